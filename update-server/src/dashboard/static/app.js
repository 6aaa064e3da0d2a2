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
