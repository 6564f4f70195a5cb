// litestar-queues dashboard: a little progressive enhancement. Every page is complete without it; with it,
// running jobs show their progress and status live (Server-Sent Events of the jobs on the page) and the overview
// refreshes itself.
(function () {
  "use strict";
  var body = document.body;
  var TERMINAL = { completed: 1, failed: 1, cancelled: 1, expired: 1 };
  var LIFECYCLE = {
    "task.started": "running", "task.retrying": "pending", "task.completed": "completed",
    "task.failed": "failed", "task.cancelled": "cancelled"
  };

  function each(selector, fn, root) {
    Array.prototype.forEach.call((root || document).querySelectorAll(selector), fn);
  }

  function setStatus(id, status) {
    each('[data-job-status="' + id + '"]', function (badge) {
      badge.textContent = status;
      badge.className = "status s-" + status;
    });
    each('[data-job-progress="' + id + '"]', function (bar) { bar.hidden = status !== "running"; });
  }

  function setProgress(id, event) {
    var percent = event.progressPercent;
    if (percent == null && event.progressTotal) {
      percent = 100 * event.progressCurrent / event.progressTotal;
    }
    each('[data-job-progress="' + id + '"]', function (holder) {
      var bar = holder.querySelector("progress");
      var label = holder.querySelector(".pct");
      holder.hidden = false;
      if (percent != null) {
        bar.max = 100;
        bar.value = Math.max(0, Math.min(100, percent));
        label.textContent = Math.round(bar.value) + "%";
      } else if (event.progressCurrent != null) {
        label.textContent = String(event.progressCurrent);
      }
    });
  }

  function logEvent(id, event) {
    each('[data-job-events="' + id + '"]', function (list) {
      var item = document.createElement("li");
      var when = document.createElement("time");
      var kind = document.createElement("span");
      var text = document.createElement("span");
      when.dateTime = event.occurredAt;
      when.textContent = (event.occurredAt || "").replace("T", " ").slice(0, 19);
      kind.className = "type";
      kind.textContent = event.type;
      var detail = event.message || "";
      if (event.type === "task.progress") {
        var shown = event.progressPercent != null ? Math.round(event.progressPercent) + "%" :
          event.progressCurrent + (event.progressTotal ? " / " + event.progressTotal : "");
        detail = shown + (detail ? " · " + detail : "");
      }
      if (event.attempt != null) { detail = (detail ? detail + " · " : "") + "attempt " + event.attempt; }
      text.textContent = detail;
      item.setAttribute("data-event-type", event.type);
      item.appendChild(when);
      item.appendChild(kind);
      item.appendChild(text);
      list.appendChild(item);
      list.scrollTop = list.scrollHeight;
      each("[data-events-empty]", function (hint) { hint.hidden = true; });
    });
  }

  function watch() {
    var url = body.getAttribute("data-live");
    if (!url || !window.EventSource) { return null; }
    var ids = [];
    each("[data-job-progress], [data-job-events], [data-live-job]", function (node) {
      var id = node.getAttribute("data-job-progress") || node.getAttribute("data-job-events") ||
        node.getAttribute("data-job");
      if (id && ids.indexOf(id) < 0) { ids.push(id); }
    });
    if (!ids.length) { return null; }
    var heading = document.querySelector("[data-job-active]");
    var active = heading && heading.getAttribute("data-job-active") === "true";
    var source = new EventSource(url + "?" + ids.map(function (id) { return "job=" + encodeURIComponent(id); }).join("&"));
    source.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (error) { return; }
      var id = event.taskId;
      if (!id) { return; }
      logEvent(id, event);
      if (event.type === "task.progress") { setProgress(id, event); }
      var status = LIFECYCLE[event.type];
      if (status) {
        setStatus(id, status);
        // The job page shows the result or error once the job ends: read it again (once, never in a loop),
        // keeping the events seen so far (a Channels backend may keep no history to replay them).
        if (active && TERMINAL[status] && heading.getAttribute("data-job") === id) {
          active = false;
          source.close();
          refresh(true);
        }
      }
    };
    return source;
  }

  // Read this page again and put its new content in place; with keepEvents, the live event list stays as it is.
  function refresh(keepEvents) {
    return fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        var parsed = html && new DOMParser().parseFromString(html, "text/html").getElementById("main");
        var main = document.getElementById("main");
        if (!parsed || !main) { return false; }
        var fresh = document.importNode(parsed, true);
        var list = document.querySelector("[data-job-events]");
        var freshList = fresh.querySelector("[data-job-events]");
        if (keepEvents && list && freshList) {
          freshList.parentNode.replaceChild(list, freshList);
          each("[data-events-empty]", function (hint) { hint.hidden = list.children.length > 0; }, fresh);
        }
        // A progress bar keeps what the events told it (the server does not know it).
        each("[data-job-progress]", function (holder) {
          var live = main.querySelector('[data-job-progress="' + holder.getAttribute("data-job-progress") + '"]');
          var bar = live && live.querySelector("progress");
          if (bar && bar.hasAttribute("value")) {
            holder.querySelector("progress").max = bar.max;
            holder.querySelector("progress").value = bar.value;
            holder.querySelector(".pct").textContent = live.querySelector(".pct").textContent;
          }
        }, fresh);
        main.parentNode.replaceChild(fresh, main);
        return true;
      })
      .catch(function () { return false; });
  }

  // A job page reads its job again every few seconds while the job is active: an event stream can miss the end
  // (a Channels backend may keep no history for a page that subscribes late), the page must not.
  function followJob() {
    if (!document.querySelector('[data-job-active="true"]') || !window.fetch || !window.DOMParser) { return; }
    var timer = window.setInterval(function () {
      var heading = document.querySelector("[data-job-active]");
      if (!heading || heading.getAttribute("data-job-active") !== "true") {
        window.clearInterval(timer);
        return;
      }
      if (!document.hidden) { refresh(true); }
    }, 3000);
  }

  function autoRefresh() {
    var box = document.querySelector("[data-autorefresh]");
    if (!box || !window.fetch || !window.DOMParser) { return; }
    box.parentNode.hidden = false;
    window.setInterval(function () {
      if (!box.checked || document.hidden) { return; }
      refresh(false).then(function (swapped) {
        if (!swapped) { return; }
        box = document.querySelector("[data-autorefresh]");
        box.parentNode.hidden = false;
        if (live) { live.close(); }
        live = watch();
      });
    }, 5000);
  }

  var live = watch();
  followJob();
  autoRefresh();
})();
