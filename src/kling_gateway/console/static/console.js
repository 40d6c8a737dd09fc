// The console's only script of its own (the CSP allows no inline script): draws the overview chart
// from the data-* attributes of #chart, again whenever htmx swaps fresh figures in.
(function () {
  "use strict";
  var plot = null;

  function draw() {
    var el = document.getElementById("chart");
    if (!el || typeof uPlot === "undefined") { return; }
    if (plot) { plot.destroy(); plot = null; }
    var labels = JSON.parse(el.dataset.labels);
    var tasks = JSON.parse(el.dataset.tasks);
    var spend = JSON.parse(el.dataset.spend).map(Number);
    var xs = labels.map(function (_, i) { return i; });
    plot = new uPlot({
      width: Math.max(320, el.clientWidth || 800),
      height: 240,
      scales: { x: { time: false } },
      axes: [
        { values: function (_, ticks) { return ticks.map(function (i) { return (labels[i] || "").slice(5); }); } },
        { label: "tasks" },
        { side: 1, scale: "credits", label: "credits", grid: { show: false } }
      ],
      series: [
        {},
        { label: "tasks", stroke: "#2563eb", width: 2, fill: "rgba(37,99,235,0.08)" },
        { label: "credits", scale: "credits", stroke: "#d97706", width: 2 }
      ]
    }, [xs, tasks, spend], el);
  }

  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSettle", draw);
})();
