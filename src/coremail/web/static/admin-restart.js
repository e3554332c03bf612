// The webadmin's "web is restarting" page: asks /webadmin/ping every second
// until a new web process answers (another boot token than this page's),
// then goes back to the services page. Without script, a meta refresh does.
(function () {
  "use strict";
  var body = document.body;
  var boot = body.getAttribute("data-boot");
  var next = body.getAttribute("data-next") || "/webadmin/services";
  function poll() {
    fetch("/webadmin/ping", { cache: "no-store" }).then(function (r) {
      return r.ok ? r.text() : "";
    }).then(function (t) {
      if (t && t !== boot) { window.location.href = next; } else { setTimeout(poll, 1000); }
    }, function () { setTimeout(poll, 1000); });
  }
  setTimeout(poll, 1000);
})();
