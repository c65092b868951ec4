/* Mesa de Ayuda: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  // Ask before destructive actions: <form data-confirm="Are you sure?">
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // Submit on change (the language switch); its button is only for browsers without JS.
  document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // Live lists and threads: an element with data-refresh="url" (optionally data-refresh-ms)
  // is re-fetched while the tab is visible, so estados and new messages show without a reload.
  // Content that did not change is left as it is: rebuilding it reloaded the thread's images
  // every few seconds, and the page below them jumped while they loaded (under a reader's eyes,
  // or under the click on a form's button). notificaciones.js refreshes through the same function.
  var REFRESH_MS = 20000;
  function refrescar(region) {
    if (document.hidden) { return; }
    fetch(region.getAttribute("data-refresh"), { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null || !html.trim()) { return; }
        var nuevo = document.createElement("template");
        nuevo.innerHTML = html;  // serialised as the region's own content is, to compare them
        if (nuevo.innerHTML.trim() !== region.innerHTML.trim()) { region.innerHTML = nuevo.innerHTML; }
      })
      .catch(function () { /* offline for a moment: try again next time */ });
  }
  window.mesaRefrescar = refrescar;
  document.querySelectorAll("[data-refresh]").forEach(function (region) {
    window.setInterval(function () { refrescar(region); },
                       parseInt(region.getAttribute("data-refresh-ms"), 10) || REFRESH_MS);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) { refrescar(region); } });
  });

  // Assign dialog on the admin list: the "Assign" link opens it instead of the detail page.
  var dialog = document.getElementById("dialogo-asignar");
  if (dialog && typeof dialog.showModal === "function") {
    var form = dialog.querySelector("form[data-asignar-form]");
    document.addEventListener("click", function (event) {
      var link = event.target.closest("[data-asignar]");
      if (!link) { return; }
      event.preventDefault();
      form.action = link.getAttribute("data-asignar-url");
      dialog.querySelector("[data-asignar-numero]").textContent = link.getAttribute("data-asignar");
      // The version the list showed: if the ticket changed since, the server refuses (and says so).
      form.querySelector("[data-asignar-version]").value = link.getAttribute("data-version") || "";
      var actual = link.getAttribute("data-actual");
      form.querySelectorAll("input[name=ingeniero_id]").forEach(function (input) {
        input.checked = input.value === actual;
      });
      dialog.returnFocus = link;
      dialog.showModal();
      var first = form.querySelector("input[name=ingeniero_id]:checked") || form.querySelector("input[name=ingeniero_id]");
      if (first) { first.focus(); }
    });
    dialog.querySelectorAll("[data-cerrar-dialogo]").forEach(function (button) {
      button.addEventListener("click", function () { dialog.close(); });
    });
    dialog.addEventListener("close", function () {
      if (dialog.returnFocus) { dialog.returnFocus.focus(); }
    });
  }
})();
