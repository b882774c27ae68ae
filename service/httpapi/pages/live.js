// Keeps a page current without reloading: while a submission on it is
// queued or being graded (the page says how often to look, in
// data-live), it fetches the page again and puts the new content in place.
// Times are shown in the reader's own time zone. Without JavaScript the
// page is the same, current as of its loading.
(function () {
  "use strict";
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) {
        t.textContent = d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
        t.title = t.getAttribute("datetime");
      }
    });
  }
  function schedule() {
    var main = document.getElementById("main");
    var every = main && Number(main.getAttribute("data-live"));
    if (every > 0) {
      setTimeout(refresh, every * 1000);
    }
  }
  function refresh() {
    fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) { throw new Error(r.status); }
        return r.text();
      })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("main");
        var main = document.getElementById("main");
        if (next && main) {
          main.innerHTML = next.innerHTML;
          if (next.hasAttribute("data-live")) {
            main.setAttribute("data-live", next.getAttribute("data-live"));
          } else {
            main.removeAttribute("data-live");
          }
          localTimes(main);
        }
        schedule();
      })
      .catch(schedule);
  }
  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    schedule();
  });
})();
