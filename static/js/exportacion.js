/* Excel of a large ticket list as a background job (macro m.excel_button): the button starts the
   job (POST …/excel/jobs), the bar follows its JSON (rows written of the total) until the file is
   ready, then a download link. No inline script: CSP script-src 'self'. */
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var lang = document.documentElement.lang || "es";
  var POLL_MS = 500;

  function numero(n) { return Number(n || 0).toLocaleString(lang); }

  function iniciar(root) {
    if (root.dataset.iniciada) { return; }  // the macro may load this file more than once
    root.dataset.iniciada = "1";
    var boton = root.querySelector("[data-iniciar]");
    var panel = root.querySelector(".exportacion-progreso");
    var barra = root.querySelector(".progress");
    var relleno = root.querySelector(".progress-bar");
    var mensaje = root.querySelector("[data-mensaje]");
    var enlace = root.querySelector("[data-descargar]");
    var t = root.dataset;

    function mostrar(job) {
      var pct = job.porcentaje || 0;
      relleno.style.width = pct + "%";
      barra.setAttribute("aria-valuenow", String(pct));
      root.dataset.estado = job.estado;
      if (job.estado === "listo" && job.archivo_url) {
        relleno.classList.remove("progress-bar-animated", "progress-bar-striped");
        mensaje.textContent = t.textoListo + " " + t.textoProgreso.replace("{escritas}", numero(job.filas_escritas))
          .replace("{total}", numero(job.filas_total));
        enlace.href = job.archivo_url;
        enlace.classList.remove("d-none");
        boton.disabled = false;
        return false;
      }
      if (job.estado === "fallido" || job.estado === "expirado") {
        relleno.classList.remove("progress-bar-animated", "bg-success");
        relleno.classList.add("bg-danger");
        mensaje.textContent = job.estado === "fallido" ? t.textoFallido : t.textoExpirado;
        boton.disabled = false;
        return false;
      }
      mensaje.textContent = job.filas_total === null || job.estado === "pendiente" ? t.textoPendiente
        : t.textoProgreso.replace("{escritas}", numero(job.filas_escritas)).replace("{total}", numero(job.filas_total));
      return true;
    }

    function seguir(url) {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (job) { if (mostrar(job)) { window.setTimeout(function () { seguir(url); }, POLL_MS); } })
        .catch(function () { mostrar({ estado: "fallido", porcentaje: 0 }); });
    }

    boton.addEventListener("click", function () {
      boton.disabled = true;
      enlace.classList.add("d-none");
      relleno.classList.remove("bg-danger");
      relleno.classList.add("progress-bar-animated", "progress-bar-striped", "bg-success");
      panel.classList.remove("d-none");
      mostrar({ estado: "pendiente", porcentaje: 0, filas_total: null });
      fetch(root.dataset.exportacion, { method: "POST", credentials: "same-origin",
                                        headers: { "X-CSRFToken": csrf, "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (job) { if (mostrar(job)) { window.setTimeout(function () { seguir(job.url); }, POLL_MS); } })
        .catch(function () { mostrar({ estado: "fallido", porcentaje: 0 }); });
    });
  }

  document.querySelectorAll("[data-exportacion]").forEach(iniciar);
})();
