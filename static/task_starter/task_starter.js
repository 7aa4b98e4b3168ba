// Task starter: the run action menu's copy buttons.
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
    copyToClipboard(copy.dataset.copyText).then(() => {
      copy.textContent = "Copied";
      setTimeout(() => { copy.textContent = "Copy task id"; closeMenu(copy); }, 800);
    });
    return;
  }
  const toEditor = event.target.closest("[data-copy-arguments]");
  if (toEditor) {
    const field = document.getElementById("arguments");
    if (field) {
      const value = JSON.parse(toEditor.dataset.copyArguments);
      field.value = JSON.stringify(value === null ? {} : value, null, 2);
      field.focus();
      field.scrollIntoView({ block: "center" });
    }
    closeMenu(toEditor);
    return;
  }
  // A click outside an open action menu closes it.
  document.querySelectorAll("details.ts-menu[open]").forEach((menu) => {
    if (!menu.contains(event.target)) menu.open = false;
  });
});
