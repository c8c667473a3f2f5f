// Shows a running run's new steps as the ledger records them (server-sent events).
(function () {
  "use strict";
  var table = document.getElementById("live-steps");
  if (!table || document.body.getAttribute("data-live") !== "1") { return; }
  var after = table.getAttribute("data-after");
  var source = new EventSource(location.pathname + "/events?after=" + after);
  function cell(row, cls, text) {
    var td = document.createElement("td");
    td.className = cls;
    td.textContent = text;
    row.appendChild(td);
  }
  source.addEventListener("step", function (message) {
    var step = JSON.parse(message.data);
    var row = document.createElement("tr");
    row.className = "k-" + step.kind + (step.ok === false ? " bad" : "") + " live-step";
    row.setAttribute("data-id", String(step.id));
    cell(row, "num", step.offset.toFixed(1) + "s");
    cell(row, "kind", step.kind);
    cell(row, "sum", "attempt " + step.attempt + ": " + step.summary);
    cell(row, "num muted", "");
    table.appendChild(row);
    table.setAttribute("data-after", String(step.id));
  });
  source.addEventListener("end", function (message) {
    var status = JSON.parse(message.data).status;
    source.close();
    var banner = document.getElementById("live-banner");
    if (banner) {
      banner.className = "banner" + (status === "shipped" ? " ok" : "");
      banner.textContent = "The run ended: " + status + ". Reload for the whole report.";
      banner.setAttribute("data-ended", status);
    }
  });
})();
