/* The bell (in-app notifications) and live updates (issue 12).
   Reads /api/notificaciones once, then listens to the Server-Sent Events stream
   /api/eventos/stream (EventSource reconnects by itself and resumes with Last-Event-ID; the
   server ends each connection after SSE_MAX_SECONDS). Without EventSource it long-polls
   /api/eventos. A "notificacion" event updates the bell; it and a "cambio" event (a ticket the
   user may see changed, no notification needed) re-fetch the page's live regions
   ([data-refresh]) at once, so lists, counters and the ticket thread move without a reload.
   Each stream opens with an "inicial" cambio carrying the scope's version: after a reconnect
   gap the regions reload only if it differs from the last one seen. <html data-vivo> marks a
   page whose live stream is connected. */
(function () {
  "use strict";

  var bell = document.querySelector("[data-campana]");
  if (!bell) { return; }
  var counter = bell.querySelector("[data-campana-contador]");
  var list = bell.querySelector("[data-campana-lista]");
  var empty = bell.querySelector("[data-campana-vacia]");
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var unread = 0;
  var last = 0;
  var version = null;
  var pending = null;

  function setUnread(n) {
    unread = Math.max(0, n);
    counter.textContent = unread > 99 ? "99+" : String(unread);
    counter.classList.toggle("d-none", unread === 0);
  }

  function post(url) {
    return fetch(url, { method: "POST", credentials: "same-origin",
                        headers: { "X-CSRFToken": csrf, "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; });
  }

  function item(n, prepend) {
    if (list.querySelector('[data-id="' + n.id + '"]')) { return; }
    if (empty) { empty.remove(); empty = null; }
    var li = document.createElement("li");
    li.setAttribute("data-id", n.id);
    li.className = "border-bottom";
    var a = document.createElement("a");
    a.className = "dropdown-item text-wrap py-2" + (n.leida ? " text-body-secondary" : " fw-semibold");
    a.href = n.url || "#";
    a.textContent = n.texto;
    a.addEventListener("click", function () {
      if (!n.leida) { post("/api/notificaciones/" + n.id + "/leida"); }
    });
    li.appendChild(a);
    if (prepend) { list.insertBefore(li, list.firstChild); } else { list.appendChild(li); }
    while (list.children.length > 20) { list.removeChild(list.lastChild); }
  }

  function refreshRegions() {
    if (pending) { return; }
    // Coalesce: a notification and its cambio arrive together; fetch the regions once.
    pending = window.setTimeout(function () { pending = null; fetchRegions(); }, 50);
  }

  function fetchRegions() {
    // app.js's refresher: it leaves a region whose content did not change as it is.
    document.querySelectorAll("[data-refresh]").forEach(window.mesaRefrescar);
  }

  function onEvent(n) {
    if (n.id <= last) { return; }
    last = n.id;
    item(n, true);
    if (!n.leida) { setUnread(unread + 1); }
    refreshRegions();
  }

  function onCambio(d) {
    var known = version;
    version = d.version;
    document.documentElement.setAttribute("data-vivo", "1");
    if (d.inicial && (known === null || known === d.version)) { return; }
    refreshRegions();
  }

  bell.querySelector("[data-campana-todas]").addEventListener("click", function (event) {
    event.preventDefault();
    post("/api/notificaciones/leidas").then(function (r) {
      if (!r) { return; }
      setUnread(0);
      list.querySelectorAll(".fw-semibold").forEach(function (a) {
        a.classList.remove("fw-semibold");
        a.classList.add("text-body-secondary");
      });
    });
  });

  function longPoll() {
    var url = "/api/eventos?desde=" + last + (version === null ? "&espera=0"
                                              : "&espera=25&version=" + encodeURIComponent(version));
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { eventos: [] }; })
      .then(function (data) {
        data.eventos.forEach(onEvent);
        if (data.version !== undefined) { onCambio({ version: data.version, inicial: !data.cambio }); }
        window.setTimeout(longPoll, 500);
      })
      .catch(function () { window.setTimeout(longPoll, 5000); });
  }

  fetch("/api/notificaciones", { credentials: "same-origin", headers: { "Accept": "application/json" } })
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (data) {
      if (!data) { return; }
      data.items.forEach(function (n) { item(n, false); last = Math.max(last, n.id); });
      setUnread(data.no_leidas);
      if (window.EventSource) {
        var source = new EventSource("/api/eventos/stream?desde=" + last);
        source.addEventListener("notificacion", function (e) { onEvent(JSON.parse(e.data)); });
        source.addEventListener("cambio", function (e) { onCambio(JSON.parse(e.data)); });
      } else {
        longPoll();
      }
    });
})();
