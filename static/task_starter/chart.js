// The task page's chart (uPlot, vendored in static/vendor/uplot): runs as bars, succeeded beside
// failed, and the median duration as a line on its own axis. The last 24 hours by the hour by
// default, the last 7 days (in the wider bins the page sends) at a click; times in the viewer's
// zone, ISO dates, 24-hour clock. The legend says the range's totals, or the bin under the pointer.
"use strict";

(() => {
  const DAY = 24 * 3600;
  const RANGE_WORDS = { day: "last 24 hours", week: "last 7 days" };
  const per = (width) => (width === 3600 ? "per hour" : `per ${width / 3600} hours`);
  // Duration ticks: whole milliseconds, seconds or minutes, so no two ticks read the same.
  const DURATION_STEPS = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5,
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400,
  ];
  const COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];

  const two = (number) => String(number).padStart(2, "0");
  const day = (date) => `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}`;
  const clock = (date) => `${two(date.getHours())}:${two(date.getMinutes())}`;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;

  function seconds(value) {
    if (value == null) return "—";
    if (value < 0.001) return "< 1 ms";
    if (value < 1) return `${Math.round(value * 1000)} ms`;
    if (value < 60) return `${value.toFixed(1)} s`;
    return `${Math.floor(value / 60)} min ${Math.round(value % 60)} s`;
  }

  function durationTick(value, step) {
    if (step < 1 && value < 1) return `${Math.round(value * 1000)} ms`;
    if (step >= 60 && value >= 60) return step >= 3600 && value % 3600 === 0 ? `${value / 3600} h` : `${+(value / 60).toFixed(1)} min`;
    return `${+value.toFixed(step < 1 ? 1 : 0)} s`;
  }

  function timeTicks(u, splits, axisIndex, space, step) {
    return splits.map((stamp, index) => {
      const date = new Date(stamp * 1000);
      if (step >= DAY) return day(date);
      const previous = index > 0 ? new Date(splits[index - 1] * 1000) : null;
      const newDay = !previous || previous.getDate() !== date.getDate();
      return newDay ? `${clock(date)}\n${day(date)}` : clock(date);
    });
  }

  function draw() {
    const source = document.getElementById("ts-chart-data");
    const target = document.getElementById("ts-chart");
    const figure = document.getElementById("ts-chart-figure");
    if (!source || !target || !figure || typeof uPlot === "undefined") return;
    const all = JSON.parse(source.textContent);
    const legend = figure.querySelector(".ts-legend");
    const swatch = (name) => getComputedStyle(legend.querySelector(`[data-series=${name}] .ts-swatch`)).backgroundColor;
    const style = getComputedStyle(document.documentElement);
    const text = style.getPropertyValue("--body-quiet-color").trim() || "#666";
    const grid = style.getPropertyValue("--hairline-color").trim() || "#ddd";
    const axis = (extra) => ({ stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, font: "11px sans-serif", ...extra });
    const bars = (align) => uPlot.paths.bars({ size: [0.4, 48], align, gap: 1 });
    const colours = { succeeded: swatch("succeeded"), failed: swatch("failed"), median: swatch("median") };
    let range = "day";

    // Each bar stands over its bin: its x is the bin's middle.
    const series = (name) => {
      const bins = all[name];
      return [bins.start.map((start) => start + bins.width / 2), bins.succeeded, bins.failed, bins.p50];
    };
    const half = () => all[range].width / 2;

    const values = legend.querySelectorAll("[data-series] .ts-legend-value");
    const when = legend.querySelector("[data-series=time] .ts-legend-value");
    function showLegend(u, index) {
      const [hours, succeeded, failed, p50] = u.data;
      const sum = (list) => list.reduce((total, value) => total + (value || 0), 0);
      if (index == null) {
        when.textContent = RANGE_WORDS[range];
        values[1].textContent = sum(succeeded);
        values[2].textContent = sum(failed);
        values[3].textContent = figure.dataset[`median${range === "day" ? "Day" : "Week"}`] || "—";
        return;
      }
      const start = new Date((hours[index] - half()) * 1000);
      const end = new Date((hours[index] + half()) * 1000);
      const until = day(end) === day(start) ? clock(end) : `${day(end)} ${clock(end)}`;
      when.textContent = `${day(start)} ${clock(start)} – ${until}`;
      values[1].textContent = succeeded[index] ?? 0;
      values[2].textContent = failed[index] ?? 0;
      values[3].textContent = seconds(p50[index]);
    }

    const size = () => ({ width: Math.max(200, target.clientWidth), height: 220 });
    const chart = new uPlot({
      ...size(),
      legend: { show: false },
      cursor: { y: false, points: { show: false } },
      scales: {
        x: { time: true, range: (u, min, max) => [min - half(), max + half()] },
        runs: { range: (u, min, max) => [0, Math.max(1, max)] },
        seconds: { range: (u, min, max) => [0, Math.max(0.001, max || 0) * 1.1] },
      },
      axes: [
        axis({ space: 70, values: timeTicks }),
        axis({ scale: "runs", label: "runs", labelSize: 20, incrs: COUNT_STEPS, values: (u, splits) => splits.map(String) }),
        axis({
          scale: "seconds", side: 1, size: 64, grid: { show: false }, incrs: DURATION_STEPS,
          values: (u, splits, axisIndex, space, step) => splits.map((value) => durationTick(value, step)),
        }),
      ],
      series: [
        {},
        { label: "Succeeded", scale: "runs", fill: colours.succeeded, stroke: colours.succeeded, width: 0, paths: bars(-1), points: { show: false } },
        { label: "Failed", scale: "runs", fill: colours.failed, stroke: colours.failed, width: 0, paths: bars(1), points: { show: false } },
        { label: "Median duration", scale: "seconds", stroke: colours.median, width: 1.5, dash: [4, 3], points: { show: true, size: 4 } },
      ],
      hooks: { setCursor: [(u) => showLegend(u, u.cursor.idx)] },
    }, series(range), target);

    function choose(name) {
      range = name;
      chart.setData(series(name));
      figure.querySelectorAll("[data-range]").forEach((button) => {
        button.setAttribute("aria-pressed", String(button.dataset.range === name));
      });
      const words = RANGE_WORDS[name];
      target.setAttribute("aria-label", `Runs ${per(all[name].width)} over the ${words}: successes, failures, and the median duration`);
      figure.querySelector(".ts-chart-range").textContent = `Runs ${per(all[name].width)}, ${words}`;
      showLegend(chart, null);
    }

    figure.querySelector(".ts-chart-zone").textContent = zone;
    figure.addEventListener("click", (event) => {
      const button = event.target.closest("[data-range]");
      if (button) choose(button.dataset.range);
    });
    window.addEventListener("resize", () => chart.setSize(size()));
    target.uplot = chart;  // for the console and the browser tests
    choose(range);
  }

  document.addEventListener("DOMContentLoaded", draw);
})();
