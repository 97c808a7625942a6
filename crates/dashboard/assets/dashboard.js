// Steward dashboard: live updates. The pages are complete without this script; it
// follows the operator's existing server-sent event stream (/api/v1/events, read with
// fetch because its events are named after their reasons, which EventSource cannot
// listen to all at once), shows a spec's new events at once, and refreshes the regions
// marked data-live by fetching the same page again: no reload, no framework.
(function () {
  "use strict";
  var body = document.body;
  var stream = body.dataset.stream;
  var status = document.getElementById("live-state");
  function say(text) {
    if (status) status.textContent = text;
  }
  if (!stream || !window.fetch || !window.DOMParser || !window.TextDecoder) {
    say("Live updates off (this browser lacks fetch streaming)");
    return;
  }
  var key = body.dataset.streamKey || null;
  // RFC 3339 with up to nanoseconds; Date.parse wants milliseconds.
  function millis(text) {
    return Date.parse(String(text).replace(/(\.\d{3})\d+/, "$1"));
  }
  var renderedAt = millis(body.dataset.renderedAt);
  // A spec page follows one key and can refresh often; the overview may follow
  // thousands of keys, so it refreshes at most once a second.
  var delay = key ? 200 : 1000;
  var timer = null;
  var busy = false;
  var again = false;

  function openDetails(el) {
    return Array.prototype.map.call(el.querySelectorAll("details"), function (d) {
      return d.open;
    });
  }

  function refresh() {
    timer = null;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(location.href, { headers: { Accept: "text/html" }, cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (el) {
          var fresh = doc.querySelector('[data-live="' + el.dataset.live + '"]');
          if (!fresh || fresh.innerHTML === el.innerHTML) return;
          // Keep what the reader opened and where the keyboard focus is.
          if (el.contains(document.activeElement) && document.activeElement !== el) return;
          var open = openDetails(el);
          el.replaceWith(fresh);
          fresh.querySelectorAll("details").forEach(function (d, i) {
            if (open[i]) d.open = true;
          });
        });
        doc.querySelectorAll("#events > li").forEach(function (li) {
          addEventItem(li.cloneNode(true), true);
        });
        say("Live: updated " + new Date().toLocaleTimeString());
      })
      .catch(function (e) {
        say("Live updates: refreshing failed (" + e.message + "); retrying on the next event");
      })
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          schedule();
        }
      });
  }

  function schedule() {
    if (!timer) timer = setTimeout(refresh, delay);
  }

  function eventId(e) {
    return e.time + "|" + e.reason + "|" + e.message;
  }

  function addEventItem(li, keepOrder) {
    var list = document.getElementById("events");
    if (!list) return;
    var id = li.getAttribute("data-event");
    var known = list.querySelectorAll("li");
    for (var i = 0; i < known.length; i++) {
      if (known[i].getAttribute("data-event") === id) return;
    }
    var at = millis(id.split("|")[0]);
    var before = null;
    for (var j = 0; j < known.length; j++) {
      if (millis(known[j].getAttribute("data-event").split("|")[0]) <= at) {
        before = known[j];
        break;
      }
    }
    list.insertBefore(li, keepOrder ? before : list.firstChild);
    var none = document.getElementById("no-events");
    if (none) none.remove();
  }

  function showEvent(e) {
    var li = document.createElement("li");
    li.className = String(e.type).toLowerCase();
    li.setAttribute("data-event", eventId(e));
    var time = document.createElement("time");
    time.setAttribute("datetime", e.time);
    time.textContent = new Date(millis(e.time)).toISOString().slice(11, 19);
    li.appendChild(time);
    [["type", e.type], ["reason", e.reason], ["message", e.message]].forEach(function (p) {
      li.appendChild(document.createTextNode(" "));
      var s = document.createElement(p[0] === "reason" ? "strong" : "span");
      s.className = p[0];
      s.textContent = p[1];
      li.appendChild(s);
    });
    if (e.object) {
      li.appendChild(document.createTextNode(" "));
      var o = document.createElement("span");
      o.className = "object";
      o.textContent = "(" + e.object + ")";
      li.appendChild(o);
    }
    addEventItem(li, true);
  }

  function onBlock(block) {
    var name = "message";
    var data = [];
    block.split(/\r?\n/).forEach(function (line) {
      if (line.indexOf("event:") === 0) name = line.slice(6).trim();
      else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
    });
    if (!data.length) return;
    if (name === "lagged") {
      schedule();
      return;
    }
    var e;
    try {
      e = JSON.parse(data.join("\n"));
    } catch (err) {
      return;
    }
    // The stream replays its buffer first: what happened before this page was
    // rendered is on it already.
    if (!(millis(e.time) >= renderedAt)) return;
    if (key && e.key === key) showEvent(e);
    schedule();
  }

  var backoff = 1000;
  function connect() {
    say("Live updates: connecting");
    var url = stream + (key ? "?key=" + encodeURIComponent(key) : "");
    fetch(url, { headers: { Accept: "text/event-stream" }, cache: "no-store" })
      .then(function (r) {
        if (!r.ok || !r.body) throw new Error("HTTP " + r.status);
        backoff = 1000;
        say("Live");
        var reader = r.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) throw new Error("the stream ended");
            buffer += decoder.decode(chunk.value, { stream: true });
            var blocks = buffer.split(/\r?\n\r?\n/);
            buffer = blocks.pop();
            blocks.forEach(onBlock);
            return pump();
          });
        }
        return pump();
      })
      .catch(function (e) {
        say("Live updates interrupted (" + e.message + "); reconnecting in " + backoff / 1000 + " s");
        setTimeout(function () {
          // Catch up on what happened while disconnected.
          schedule();
          connect();
        }, backoff);
        backoff = Math.min(backoff * 2, 30000);
      });
  }
  connect();
})();
