// Copy buttons and "select all"; every page works without this file.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(() => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  });
});
document.addEventListener("change", (event) => {
  const all = event.target.closest("[data-select-all]");
  if (!all) return;
  const form = all.closest("form");
  form.querySelectorAll(`input[type=checkbox][name="${all.dataset.selectAll}"]`).forEach((box) => { box.checked = all.checked; });
});
// Destructive forms ask once, naming what will be lost.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});
// An import's page polls its progress while the import runs and reloads for the report when it
// ends; without this file the page has a Refresh link.
const importProgress = document.querySelector("[data-progress-url]");
if (importProgress) {
  const bar = importProgress.querySelector("progress");
  const text = importProgress.querySelector("[data-progress-text]");
  const poll = () => {
    fetch(importProgress.dataset.progressUrl, { headers: { accept: "application/json" }, cache: "no-store" })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((progress) => {
        if (progress.status !== "running") { window.location.reload(); return; }
        bar.max = Math.max(progress.total_rows, 1);
        bar.value = progress.done_rows;
        bar.textContent = `${progress.percent}%`;
        text.textContent = progress.text;
        setTimeout(poll, 1000);
      })
      .catch(() => setTimeout(poll, 5000));
  };
  setTimeout(poll, 1000);
}
