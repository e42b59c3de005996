// Pages that start from a photo: drop a photo on the upload zone to send it, and click a
// face drawn on the photo to choose it (the radio buttons beside it do the same by keyboard).
"use strict";

for (const zone of document.querySelectorAll("[data-dropzone]")) {
  const input = zone.querySelector("input[type=file]");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      input.form.requestSubmit();
    }
  });
}
// A photo dropped beside the zone would open in the tab and leave the form.
for (const kind of ["dragover", "drop"]) {
  document.addEventListener(kind, (event) => event.preventDefault());
}

const faces = document.querySelectorAll("svg.faces [data-face]");

function markChosen() {
  const chosen = document.querySelector("input[name=face]:checked");
  for (const face of faces) {
    face.classList.toggle("chosen", chosen !== null && face.dataset.face === chosen.value);
  }
}

for (const face of faces) {
  const radio = document.getElementById("face-" + face.dataset.face);
  if (radio === null || radio.disabled) continue;
  face.classList.add("pickable");
  face.addEventListener("click", () => {
    radio.checked = true;
    radio.focus();
    markChosen();
  });
}
document.addEventListener("change", (event) => {
  if (event.target.name === "face") markChosen();
});
markChosen();
