// django-celery-beat's schedule form: the "Crontab translation" follows the crontab picked.
"use strict";

(function () {
  const data = document.getElementById("readable-crontabs");
  const select = document.getElementById("id_crontab");
  const shown = document.querySelector(".field-crontab_translation .readonly");
  if (!data || !select || !shown) return;
  const readable = JSON.parse(data.textContent);
  shown.setAttribute("aria-live", "polite");

  function translate() {
    const value = select.value;
    if (!value) {
      shown.textContent = "No crontab picked.";
    } else if (value in readable) {
      shown.textContent = readable[value];
    } else {
      // Added through the "+" pop-up after the page was drawn: its words come from the server.
      const option = select.options[select.selectedIndex];
      shown.textContent = `${option ? option.text : value} (translated once saved)`;
    }
  }

  // The admin's "+" pop-up announces a new crontab with a jQuery event, which a native
  // listener would not hear; django.jQuery hears both.
  if (window.django && window.django.jQuery) {
    window.django.jQuery(select).on("change", translate);
  } else {
    select.addEventListener("change", translate);
  }
})();
