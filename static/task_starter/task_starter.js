// Task starter: copy buttons, action menus that survive live refreshes, the new run's row marked,
// times in the viewer's zone. The task page's chart is chart.js.
"use strict";

function copyToClipboard(text) {
  if (navigator.clipboard && window.isSecureContext) {
    return navigator.clipboard.writeText(text);
  }
  const area = document.createElement("textarea");
  area.value = text;
  document.body.appendChild(area);
  area.select();
  document.execCommand("copy");
  area.remove();
  return Promise.resolve();
}

function closeMenu(element) {
  const menu = element.closest("details");
  if (menu) menu.open = false;
}

document.addEventListener("click", (event) => {
  const copy = event.target.closest("[data-copy-text]");
  if (copy) {
    const label = copy.dataset.label || copy.textContent;
    copy.dataset.label = label;
    copyToClipboard(copy.dataset.copyText).then(() => {
      copy.textContent = "Copied";
      setTimeout(() => { copy.textContent = label; closeMenu(copy); }, 800);
    });
    return;
  }
  // A click outside an open action menu closes it.
  document.querySelectorAll("details.ts-menu[open]").forEach((menu) => {
    if (!menu.contains(event.target)) menu.open = false;
  });
});

// An open action menu is drawn over the page beside its ⋯ (fixed, not absolute), so the
// table's scroll box cannot cut it; above the ⋯ when there is no room below.
const MARGIN = 8;
function placeMenu(menu) {
  const list = menu.querySelector(":scope > ul");
  if (!list || !menu.open) return;
  list.classList.add("ts-menu-placed");
  const trigger = menu.querySelector("summary").getBoundingClientRect();
  const { offsetWidth: width, offsetHeight: height } = list;
  const left = Math.max(MARGIN, Math.min(trigger.right - width, window.innerWidth - width - MARGIN));
  const below = trigger.bottom + 2;
  const above = trigger.top - height - 2;
  const fitsBelow = below + height <= window.innerHeight - MARGIN;
  const top = fitsBelow || above < MARGIN ? Math.max(MARGIN, Math.min(below, window.innerHeight - height - MARGIN)) : above;
  list.style.left = `${left}px`;
  list.style.top = `${top}px`;
}
const placeOpenMenus = () => document.querySelectorAll("details.ts-menu[open]").forEach(placeMenu);
// "toggle" does not bubble: listen while it goes down.
document.addEventListener("toggle", (event) => {
  if (event.target.matches?.("details.ts-menu")) placeMenu(event.target);
}, true);
document.addEventListener("scroll", placeOpenMenus, { capture: true, passive: true });
window.addEventListener("resize", placeOpenMenus);

// Escape closes an open action menu and gives the focus back to its button.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  document.querySelectorAll("details.ts-menu[open]").forEach((menu) => {
    menu.open = false;
    menu.querySelector("summary").focus();
  });
});

// The runs page's failed runs: one box ticks them all, and the retry button waits for a tick.
function syncSelection() {
  const boxes = [...document.querySelectorAll("input[name=run]")];
  const ticked = boxes.filter((box) => box.checked).length;
  const all = document.getElementById("select-failed");
  if (all) {
    all.disabled = boxes.length === 0;
    all.checked = boxes.length > 0 && ticked === boxes.length;
    all.indeterminate = ticked > 0 && ticked < boxes.length;
  }
  const retry = document.getElementById("retry-selected");
  if (retry) retry.disabled = ticked === 0;
  const count = document.getElementById("selected-count");
  if (count) count.textContent = ticked ? `${ticked} selected` : "";
}
document.addEventListener("change", (event) => {
  if (event.target.id === "select-failed") {
    document.querySelectorAll("input[name=run]").forEach((box) => { box.checked = event.target.checked; });
  }
  if (event.target.matches("#select-failed, input[name=run]")) syncSelection();
});
document.addEventListener("DOMContentLoaded", syncSelection);
window.addEventListener("pageshow", syncSelection);  // boxes the browser ticked again on "Back"

// A live refresh replaces the rows: keep the open menu open and the ticked boxes ticked, and
// say which runs changed status (for screen readers: the rows themselves are replaced).
let kept = { menus: [], ticked: [], statuses: new Map() };
const statuses = () => new Map(
  [...document.querySelectorAll("tr.ts-run")].map((row) => [row.id, row.querySelector(".ts-status")?.textContent.trim()]),
);
document.addEventListener("htmx:beforeSwap", () => {
  kept = {
    menus: [...document.querySelectorAll("details.ts-menu[open]")].map((menu) => menu.closest("tr")?.id),
    ticked: [...document.querySelectorAll("input[name=run]:checked")].map((box) => box.value),
    statuses: statuses(),
  };
});

function announceChanges() {
  const announcer = document.getElementById("ts-announcer");
  if (!announcer) return;
  const changed = [];
  statuses().forEach((status, rowId) => {
    const before = kept.statuses.get(rowId);
    if (before && status && before !== status) {
      const task = document.querySelector(`#${CSS.escape(rowId)} [data-label="Task"]`)?.textContent.trim();
      const title = document.querySelector("#content h1")?.textContent.trim();
      changed.push(`${task || title || "A run"}: ${status}`);
    }
  });
  if (changed.length) announcer.textContent = changed.join(". ");
}
document.addEventListener("htmx:afterSettle", (event) => {
  kept.menus.forEach((rowId) => {
    const menu = rowId && document.querySelector(`#${CSS.escape(rowId)} details.ts-menu`);
    if (menu) menu.open = true;
  });
  kept.ticked.forEach((value) => {
    const box = document.querySelector(`input[name=run][value="${CSS.escape(value)}"]`);
    if (box) box.checked = true;
  });
  syncSelection();
  showTimes(event.target);
  announceChanges();
  highlightNewRun();
});

// After a start, the page's address ends in #run-<id>: that row is marked and brought into
// view, and marked again when a live refresh replaces the rows.
let scrolledToNewRun = false;
function highlightNewRun() {
  if (!window.location.hash.startsWith("#run-")) return;
  const row = document.getElementById(decodeURIComponent(window.location.hash.slice(1)));
  if (!row) return;
  row.classList.add("ts-new");
  if (!scrolledToNewRun) {
    scrolledToNewRun = true;
    row.scrollIntoView({ block: "center" });
  }
}
document.addEventListener("DOMContentLoaded", highlightNewRun);

// Times arrive in UTC; show them in the viewer's time zone, one format everywhere
// ("2026-11-23 13:05:09 CET"), with how long ago below.
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
const zoneName = new Intl.DateTimeFormat("en", { timeZoneName: "short" });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const two = (number) => String(number).padStart(2, "0");

function local(date) {
  const day = `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}`;
  const time = `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
  const name = zoneName.formatToParts(date).find((part) => part.type === "timeZoneName");
  return `${day} ${time} ${name ? name.value : zone}`;
}

function ago(date) {
  let value = Math.round((date - Date.now()) / 1000);
  const steps = [[60, "second"], [60, "minute"], [24, "hour"], [7, "day"], [Infinity, "week"]];
  for (const [size, unit] of steps) {
    if (Math.abs(value) < size) return relative.format(Math.round(value), unit);
    value /= size;
  }
  return "";
}

function showTimes(root) {
  (root || document).querySelectorAll("time.ts-time").forEach((element) => {
    const date = new Date(element.getAttribute("datetime"));
    if (Number.isNaN(date.getTime())) return;
    element.textContent = local(date);
    const since = document.createElement("span");
    since.className = "ts-ago";
    since.textContent = ago(date);
    element.append(since);
    element.title = `${zone}; UTC ${element.getAttribute("datetime")}`;
  });
}

document.addEventListener("DOMContentLoaded", () => showTimes(document));

// Pages that name the viewer's zone (the Schedules tab), and forms that send it with a local
// time the person typed (a pause's end).
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".ts-zone").forEach((element) => { element.textContent = zone; });
  document.querySelectorAll("input.ts-zone-input").forEach((input) => { input.value = zone; });
});
