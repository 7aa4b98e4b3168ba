// The task page's start form: switch between the parameter form and the JSON editor without a
// reload, carrying what was typed both ways, and "Copy arguments to code editor" into whichever
// is shown. The server reads the same text the same way (forms.StartForm); this only converts.
"use strict";

(() => {
  const form = document.querySelector("form.ts-start");
  if (!form) return;
  const editor = form.querySelector("#ts-editor");
  const json = form.querySelector("#arguments");
  const switchError = form.querySelector("#ts-switch-error");
  const pane = (name) => form.querySelector(`[data-editor-pane="${name}"]`);
  const inputs = () => [...form.querySelectorAll("[data-editor-pane=form] [name^='param-']")];
  const nameOf = (input) => input.name.slice("param-".length);

  function jsonOrText(text) {
    try {
      return JSON.parse(text);
    } catch (error) {
      return text;
    }
  }

  // One field's text as its JSON value: as the server reads it, or else the text itself, so that
  // nothing typed is lost on the way (the start then says what is wrong with it).
  function fieldValue(input) {
    if (input.type === "checkbox") return input.checked;
    const text = input.value;
    if (input.dataset.kind === "text") return text;
    const trimmed = text.trim();
    if (input.dataset.kind === "number") {
      const number = Number(trimmed);
      return trimmed !== "" && Number.isFinite(number) ? number : text;
    }
    const separated = () => trimmed.split(",").map((part) => part.trim())
      .map((part) => (input.dataset.list === "text" ? part : jsonOrText(part)));
    let value;
    try {
      value = JSON.parse(trimmed);
    } catch (error) {
      // "1, 2, 3": the items, as numbers where they read as JSON, for a list of text as text.
      return input.dataset.list && !trimmed.startsWith("[") ? separated() : text;
    }
    // One item typed alone ("7") is a list of one.
    const scalar = value !== null && typeof value !== "object";
    return input.dataset.list && scalar && !trimmed.startsWith("[") ? separated() : value;
  }

  function formToObject() {
    const values = {};
    inputs().forEach((input) => {
      const empty = input.type !== "checkbox" && input.value.trim() === "";
      // An empty optional field is not sent (its default applies); an empty required one is null.
      if (empty && !input.required) return;
      values[nameOf(input)] = empty ? null : fieldValue(input);
    });
    return values;
  }

  function fieldText(input, value) {
    if (value === null || value === undefined) return "";
    if (input.dataset.kind === "number" || input.dataset.kind === "text") {
      return typeof value === "string" ? value : JSON.stringify(value);
    }
    // A list of numbers as it is typed; text that was not a list goes back as it was typed.
    if (Array.isArray(value) && input.dataset.list === "json"
        && value.every((item) => typeof item === "number")) return value.join(", ");
    if (typeof value === "string" && input.dataset.list) return value;
    return JSON.stringify(value);
  }

  // Arguments (by name, or by position) into the form; an error message if they do not fit it.
  function objectToForm(values) {
    const fields = inputs();
    let named = values;
    if (Array.isArray(values)) {
      if (values.length > fields.length) return `The task takes ${fields.length} arguments; ${values.length} were given.`;
      named = Object.fromEntries(values.map((value, index) => [nameOf(fields[index]), value]));
    }
    if (named === null || typeof named !== "object") return "The arguments must be a JSON object or an array to show them in the form.";
    const unknown = Object.keys(named).filter((name) => !fields.some((input) => nameOf(input) === name));
    if (unknown.length) return `The form has no field for ${unknown.join(", ")}: remove it from the JSON, or start from the JSON editor.`;
    fields.forEach((input) => {
      const value = named[nameOf(input)];
      if (input.type === "checkbox") {
        if (value !== undefined) input.checked = Boolean(value);
      } else if (value === undefined) {
        input.value = "";
      } else {
        input.value = fieldText(input, value);
      }
    });
    return "";
  }

  function show(name) {
    pane("form").hidden = name !== "form";
    pane("json").hidden = name !== "json";
    editor.value = name;
    switchError.hidden = true;
    const url = new URL(window.location.href);
    url.searchParams.set("editor", name);
    window.history.replaceState(null, "", url);
  }

  function refuseSwitch(message) {
    switchError.textContent = message;
    switchError.hidden = false;
    json.setAttribute("aria-invalid", "true");
    json.focus();
  }

  function toForm() {
    let values;
    try {
      values = JSON.parse(json.value.trim() || "{}");
    } catch (error) {
      refuseSwitch(`Fix the JSON first: ${error.message}`);
      return;
    }
    const problem = objectToForm(values);
    if (problem) {
      refuseSwitch(problem);
      return;
    }
    show("form");
    inputs()[0]?.focus();
  }

  function toJson() {
    json.value = JSON.stringify(formToObject(), null, 2);
    show("json");
    json.focus();
    json.setSelectionRange(0, 0); // from its first line, not scrolled to the end
    json.scrollTop = 0;
  }

  form.addEventListener("click", (event) => {
    const link = event.target.closest("[data-editor-switch]");
    if (!link) return;
    event.preventDefault();
    if (link.dataset.editorSwitch === "json") toJson();
    else toForm();
  });

  document.addEventListener("click", (event) => {
    const copy = event.target.closest("[data-copy-arguments]");
    if (!copy) return;
    const value = JSON.parse(copy.dataset.copyArguments);
    const target = pane("form") && !pane("form").hidden ? "form" : "json";
    if (target === "form" && !objectToForm(value === null ? {} : value)) {
      inputs()[0]?.focus();
      inputs()[0]?.scrollIntoView({ block: "center" });
    } else {
      json.value = JSON.stringify(value === null ? {} : value, null, 2);
      show("json");
      json.focus();
      json.scrollIntoView({ block: "center" });
    }
    copy.closest("details")?.removeAttribute("open");
  });
})();
