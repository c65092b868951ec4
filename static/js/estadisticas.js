/* Statistics dashboard: draws the charts from the figures the page embeds
   (data-estadisticas, data-etiquetas on #estadisticas). No inline script: CSP script-src 'self'. */
(function () {
  "use strict";
  var root = document.getElementById("estadisticas");
  if (!root || typeof window.Chart === "undefined") { return; }
  var stats = JSON.parse(root.dataset.estadisticas);
  var t = JSON.parse(root.dataset.etiquetas);
  var Chart = window.Chart;

  var ESTADO_COLORES = { abierto: "#2563eb", en_progreso: "#d97706", en_espera: "#7c3aed",
                         resuelto: "#059669", cerrado: "#6b7280" };
  var PRIORIDAD_COLORES = { baja: "#10b981", media: "#3b82f6", alta: "#f97316", critica: "#dc2626" };
  // JSON objects arrive with sorted keys: keep the domain's own order.
  var ESTADOS = ["abierto", "en_progreso", "en_espera", "resuelto", "cerrado"];
  var PRIORIDADES = ["baja", "media", "alta", "critica"];
  var narrow = window.matchMedia("(max-width: 576px)").matches;

  Chart.defaults.locale = document.documentElement.lang || "es";
  Chart.defaults.maintainAspectRatio = false;
  if (window.matchMedia("(prefers-reduced-motion: reduce)").matches) { Chart.defaults.animation = false; }
  Chart.defaults.font.size = narrow ? 11 : 12;
  Chart.defaults.plugins.legend.labels.boxWidth = 12;

  function canvas(name) { return root.querySelector('canvas[data-grafico="' + name + '"]'); }
  function valuesIn(order, obj) { return order.map(function (k) { return obj[k] || 0; }); }
  function draw(name, config) {
    var el = canvas(name);
    if (el) { new Chart(el, config); }
  }
  var integerAxis = { beginAtZero: true, grace: "5%", ticks: { precision: 0 } };

  draw("serie", {
    type: "line",
    data: {
      labels: stats.serie_diaria.map(function (d) { return d.fecha.slice(5); }),
      datasets: [
        { label: t.creados, data: stats.serie_diaria.map(function (d) { return d.creados; }),
          borderColor: "#2563eb", backgroundColor: "rgba(37,99,235,.15)", fill: true, cubicInterpolationMode: "monotone" },
        { label: t.cerrados, data: stats.serie_diaria.map(function (d) { return d.cerrados; }),
          borderColor: "#059669", backgroundColor: "rgba(5,150,105,.10)", fill: true, cubicInterpolationMode: "monotone" }
      ]
    },
    options: { interaction: { mode: "index", intersect: false },
               scales: { y: integerAxis, x: { ticks: { maxTicksLimit: narrow ? 6 : 15 } } } }
  });

  draw("estado", {
    type: "doughnut",
    data: {
      labels: ESTADOS.map(function (k) { return t.estado[k] || k; }),
      datasets: [{ data: valuesIn(ESTADOS, stats.por_estado),
                   backgroundColor: ESTADOS.map(function (k) { return ESTADO_COLORES[k]; }) }]
    },
    options: { plugins: { legend: { position: "bottom" } } }
  });

  draw("prioridad", {
    type: "bar",
    data: {
      labels: PRIORIDADES.map(function (k) { return t.prioridad[k] || k; }),
      datasets: [{ label: t.tickets, data: valuesIn(PRIORIDADES, stats.por_prioridad),
                   backgroundColor: PRIORIDADES.map(function (k) { return PRIORIDAD_COLORES[k]; }) }]
    },
    options: { plugins: { legend: { display: false } }, scales: { y: integerAxis } }
  });

  draw("backlog", {
    type: "bar",
    data: {
      labels: stats.backlog_por_antiguedad.map(function (b) { return t.rango[b.rango] || b.rango; }),
      datasets: [{ label: t.abiertos, data: stats.backlog_por_antiguedad.map(function (b) { return b.total; }),
                   backgroundColor: ["#93c5fd", "#60a5fa", "#f59e0b", "#f97316", "#dc2626"] }]
    },
    options: { plugins: { legend: { display: false } }, scales: { y: integerAxis } }
  });

  draw("categoria", {
    type: "bar",
    data: {
      labels: stats.por_categoria.map(function (c) { return c.categoria; }),
      datasets: [{ label: t.tickets, data: stats.por_categoria.map(function (c) { return c.total; }),
                   backgroundColor: "#0ea5e9" }]
    },
    options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: integerAxis } }
  });

  draw("ingeniero", {
    type: "bar",
    data: {
      labels: stats.por_ingeniero.map(function (i) { return i.nombre || t.sin_asignar; }),
      datasets: [
        { label: t.abiertos, data: stats.por_ingeniero.map(function (i) { return i.abiertos; }),
          backgroundColor: "#f59e0b" },
        { label: t.tickets, data: stats.por_ingeniero.map(function (i) { return i.total; }),
          backgroundColor: "#1f4e78" }
      ]
    },
    options: { indexAxis: narrow ? "y" : "x", scales: narrow ? { x: integerAxis } : { y: integerAxis } }
  });
})();
