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

// The live event stream: follows the server-sent rows after the newest one
// shown and puts them on top (at most 500 rows kept). The server filters and
// tells a browser that fell behind how many events it missed. "Pause" closes
// the stream; "Resume" reopens it after the last row shown, which first
// brings what arrived meanwhile.
(function () {
  "use strict";
  var table = document.querySelector("table[data-stream]");
  if (!table) return;
  var toggle = document.getElementById("stream-toggle");
  var status = document.getElementById("stream-status");
  var paused = false;
  var source = null;
  var KEEP = 500;
  function url() {
    var u = new URL(table.getAttribute("data-stream"), window.location.href);
    u.searchParams.set("after", table.getAttribute("data-after") || "0");
    return u.toString();
  }
  function add(html, id) {
    var holder = document.createElement("tbody");
    holder.innerHTML = html;
    var row = holder.querySelector("tr");
    if (!row) return;
    row.classList.add("fresh");
    var body = table.querySelector("tbody");
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > KEEP) body.deleteRow(body.rows.length - 1);
    if (id) table.setAttribute("data-after", id);
    var none = document.getElementById("no-events");
    if (none) none.hidden = true;
    status.textContent = "Live: last event at " + new Date().toLocaleTimeString() + ".";
  }
  function open() {
    if (paused || source) return;
    source = new EventSource(url());
    source.addEventListener("row", function (e) { add(e.data, e.lastEventId); });
    source.addEventListener("missed", function (e) {
      var n = null;
      try { n = JSON.parse(e.data).missed; } catch (err) {}
      var note = document.getElementById("stream-missed");
      note.hidden = false;
      note.textContent = (n === null ? "Some older events" : n + " event(s)") +
        " were not shown here (this page fell behind); reload for the newest, or see a node's page for its history.";
    });
    source.addEventListener("error", function () {
      if (!source || source.readyState !== EventSource.CLOSED) return;
      // Refused (signed out?) or cut: ask once to tell which, then retry.
      source = null;
      fetch(url().replace("part=live", "part=rows"), { credentials: "same-origin", cache: "no-store" })
        .then(function (r) {
          if (r.status === 401) {
            document.getElementById("signed-out").hidden = false;
            paused = true;
          }
        })
        .catch(function () {})
        .then(function () { window.setTimeout(open, 2000); });
    });
  }
  function close() {
    if (source) source.close();
    source = null;
  }
  toggle.addEventListener("click", function () {
    paused = !paused;
    toggle.textContent = paused ? "Resume" : "Pause";
    toggle.setAttribute("data-state", paused ? "paused" : "live");
    status.textContent = paused ? "Paused: new events are not shown until you resume." : "Live: new events appear at the top.";
    if (paused) close(); else open();
  });
  open();
})();
