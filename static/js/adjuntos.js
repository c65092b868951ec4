/* Attachments in the panels: drop files on the zone, see image previews before sending.
   The plain file input works without this file. */
(function () {
  "use strict";

  function previews(zone, input) {
    var box = zone.querySelector(".previsualizaciones");
    box.innerHTML = "";
    Array.prototype.forEach.call(input.files, function (file) {
      var item = document.createElement("figure");
      item.className = "figure mb-0 text-center small previsualizacion";
      if (file.type.indexOf("image/") === 0) {
        var img = document.createElement("img");
        img.className = "img-thumbnail";
        img.width = 96;
        img.alt = file.name;
        var reader = new FileReader();  // data: URL (the CSP allows data: images, not blob:)
        reader.onload = function () { img.src = reader.result; };
        reader.readAsDataURL(file);
        item.appendChild(img);
      }
      var caption = document.createElement("figcaption");
      caption.className = "figure-caption text-truncate";
      caption.style.maxWidth = "8rem";
      caption.textContent = file.name;
      item.appendChild(caption);
      box.appendChild(item);
    });
  }

  document.querySelectorAll("[data-adjuntos]").forEach(function (zone) {
    var input = zone.querySelector("input[type=file]");
    if (!input) { return; }
    input.addEventListener("change", function () { previews(zone, input); });
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("arrastrando");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("arrastrando"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        previews(zone, input);
      }
    });
  });
})();
