// Moho dashboard: refreshes the page's live region without a reload by
// asking the server for the same page with ?part=live every few seconds
// (the server renders and escapes the fragment). Stops while the tab is
// hidden; shows a banner when the session has ended.
(function () {
  "use strict";
  var region = document.getElementById("live");
  if (!region) return;
  var every = (parseInt(region.getAttribute("data-live"), 10) || 5) * 1000;
  var busy = false;
  function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    var url = new URL(window.location.href);
    url.searchParams.set("part", "live");
    fetch(url.toString(), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) {
          document.getElementById("signed-out").hidden = false;
          return null;
        }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null) return;
        var current = document.getElementById("live");
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("#live");
        if (current && fresh) current.replaceWith(fresh);
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  window.setInterval(refresh, every);
  document.addEventListener("visibilitychange", refresh);
})();

// The group selector submits itself when changed (its button stays for
// browsers without script).
(function () {
  "use strict";
  var selects = document.querySelectorAll("select[data-autosubmit]");
  Array.prototype.forEach.call(selects, function (s) {
    s.addEventListener("change", function () { s.form.submit(); });
    var go = s.form.querySelector(".scope-go");
    if (go) go.hidden = true;
  });
})();

// The live event stream: asks for the rows after the newest one shown every
// two seconds and puts them on top (at most 500 rows kept). "Pause" stops
// asking; "Resume" fetches what arrived meanwhile at once.
(function () {
  "use strict";
  var table = document.querySelector("table[data-stream]");
  if (!table) return;
  var toggle = document.getElementById("stream-toggle");
  var status = document.getElementById("stream-status");
  var paused = false;
  var busy = false;
  var KEEP = 500;
  function poll() {
    if (paused || busy || document.hidden) return;
    busy = true;
    var url = new URL(table.getAttribute("data-stream"), window.location.href);
    url.searchParams.set("after", table.getAttribute("data-after") || "0");
    fetch(url.toString(), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) {
          document.getElementById("signed-out").hidden = false;
          paused = true;
          return null;
        }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null || paused) return;
        var holder = document.createElement("table");
        holder.innerHTML = html;
        var fresh = holder.querySelector("tbody");
        if (!fresh) return;
        table.setAttribute("data-after", fresh.getAttribute("data-last") || table.getAttribute("data-after"));
        var body = table.querySelector("tbody");
        var rows = Array.prototype.slice.call(fresh.rows);
        for (var i = rows.length - 1; i >= 0; i--) {
          rows[i].classList.add("fresh");
          body.insertBefore(rows[i], body.firstChild);
        }
        while (body.rows.length > KEEP) body.deleteRow(body.rows.length - 1);
        if (rows.length > 0) {
          var none = document.getElementById("no-events");
          if (none) none.hidden = true;
          status.textContent = "Live: " + rows.length + " new event(s) at " + new Date().toLocaleTimeString() + ".";
        }
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  toggle.addEventListener("click", function () {
    paused = !paused;
    toggle.textContent = paused ? "Resume" : "Pause";
    toggle.setAttribute("data-state", paused ? "paused" : "live");
    status.textContent = paused ? "Paused: new events are not shown until you resume." : "Live: new events appear at the top.";
    if (!paused) poll();
  });
  window.setInterval(poll, 2000);
  document.addEventListener("visibilitychange", poll);
})();
