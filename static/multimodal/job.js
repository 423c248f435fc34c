// Live job progress: poll the job's JSON and redraw the bar, counts, failures and warnings until it ends.
(function () {
  const section = document.getElementById("job");
  if (!section) return;
  const url = section.dataset.statusUrl;
  const field = (name) => document.querySelector(`[data-field="${name}"]`);
  const bar = document.getElementById("job-progress");

  // Failures and warnings: a name and a reason per row; "None" for no failures, no section for no warnings.
  function renderFailures(failures, name = "failures") {
    const body = field(name);
    body.replaceChildren();
    if (name === "warnings") field("warnings-panel").hidden = !failures.length;
    if (!failures.length) {
      const row = body.insertRow();
      const cell = row.insertCell();
      cell.colSpan = 2;
      cell.textContent = "None";
      return;
    }
    for (const failure of failures) {
      const row = body.insertRow();
      row.insertCell().textContent = failure.name;   // textContent: names and reasons are never HTML
      row.insertCell().textContent = failure.reason;
    }
  }

  async function poll() {
    let job;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      job = await response.json();
    } catch (error) {
      field("error").hidden = false;
      field("error").textContent = `Could not refresh progress (${error.message}); retrying…`;
      setTimeout(poll, 3000);
      return;
    }
    for (const name of ["status", "done", "failed", "total"]) field(name).textContent = job[name];
    field("status").className = `status-badge status-${job.status}`;
    field("failed-stat").classList.toggle("has-failures", job.failed > 0);
    field("items_per_s").textContent = job.items_per_s ?? "–";
    field("seconds_left").textContent = job.seconds_left ?? "–";
    field("error").hidden = !job.error;
    field("error").textContent = job.error || "";
    bar.max = Math.max(job.total, 1);
    bar.value = job.done + job.failed;
    field("percent").textContent = `${Math.round((100 * bar.value) / bar.max)}%`;
    renderFailures(job.failures);
    renderFailures(job.warnings, "warnings");
    const retry = field("retry");  // shown only to those who may change the job
    if (retry) retry.hidden = !job.retryable;
    const active = job.status === "queued" || job.status === "running";
    const cancel = field("cancel");
    if (cancel) cancel.hidden = !active;
    field("cancelled").hidden = job.status !== "cancelled";
    if (active) setTimeout(poll, 1000);
  }
  poll();
})();
