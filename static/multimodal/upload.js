// The upload form: files can be dropped on the drop zone, and the chosen files are summed up.
const input = document.getElementById("id_files");
const zone = document.getElementById("dropzone");
const summary = document.getElementById("file-summary");

function size(bytes) {
  if (bytes < 1024 * 1024) return `${Math.max(1, Math.round(bytes / 1024))} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function summarise() {
  const files = [...input.files];
  summary.hidden = files.length === 0;
  const names = files.slice(0, 5).map((file) => file.name).join(", ");
  const more = files.length > 5 ? ` and ${files.length - 5} more` : "";
  const total = files.reduce((sum, file) => sum + file.size, 0);
  summary.textContent = `${files.length} file${files.length === 1 ? "" : "s"} (${size(total)}): ${names}${more}`;
}

input.addEventListener("change", summarise);
zone.addEventListener("dragover", (event) => {
  event.preventDefault();
  zone.classList.add("dragging");
});
zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  zone.classList.remove("dragging");
  if (event.dataTransfer.files.length) {
    input.files = event.dataTransfer.files;
    summarise();
  }
});
summarise();
