/* The support team's console: inbox, conversation, knowledge, analytics.
 * Talks to the JSON API with the session cookie; every change carries the session's CSRF token.
 * All text from the API is inserted as text, never as HTML. */
(function () {
  "use strict";
  var prefix = document.querySelector('meta[name="api-prefix"]').content;
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var view = document.getElementById("view");
  var toast = document.getElementById("toast");
  var agentInput = document.getElementById("agent-name");
  var timers = [];
  var sources = [];

  agentInput.value = localStorage.getItem("sa-agent") || "operator";
  agentInput.addEventListener("change", function () {
    localStorage.setItem("sa-agent", agentInput.value.trim() || "operator");
  });
  function agent() { return agentInput.value.trim() || "operator"; }

  function api(path, options) {
    options = options || {};
    var init = {
      method: options.method || "GET",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf }
    };
    if (options.body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    return fetch(prefix + path, init).then(function (response) {
      if (response.status === 401) { location.reload(); throw new Error("signed out"); }
      return response.text().then(function (text) {
        var body = text ? JSON.parse(text) : null;
        if (!response.ok) throw new Error((body && body.error && body.error.message) || response.statusText);
        return body;
      });
    });
  }

  function h(tag, attrs) {
    var el = document.createElement(tag);
    for (var name in attrs || {}) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") el.textContent = value;
      else if (name.slice(0, 2) === "on") el.addEventListener(name.slice(2), value);
      else el.setAttribute(name, value === true ? "" : value);
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) continue;
      (Array.isArray(child) ? child : [child]).forEach(function (c) {
        el.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
      });
    }
    return el;
  }

  function say(text) { toast.textContent = text; setTimeout(function () { if (toast.textContent === text) toast.textContent = ""; }, 4000); }
  function failed(error) { say("Failed: " + error.message); }
  function duration(seconds) {
    seconds = Math.round(seconds);
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min " + (seconds % 60) + " s";
    return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
  }
  function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

  function clear() {
    timers.forEach(clearInterval); timers = [];
    sources.forEach(function (s) { s.close(); }); sources = [];
    view.textContent = "";
  }

  function route() {
    clear();
    var hash = location.hash.slice(1) || "inbox";
    document.querySelectorAll("nav a").forEach(function (a) {
      if (a.getAttribute("href") === "#" + hash.split("/")[0]) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
    var id = hash.indexOf("conversation/") === 0 ? hash.slice(13) : null;
    if (id && /^[0-9a-f-]{36}$/.test(id)) conversation(id);
    else if (hash === "knowledge") knowledge();
    else if (hash === "analytics") analytics();
    else inbox();
  }
  window.addEventListener("hashchange", route);

  // --- inbox -----------------------------------------------------------------------------
  function inbox() {
    var body = h("tbody");
    var table = h("table", { class: "inbox" },
      h("caption", { text: "Conversations waiting for a person, the longest waiting first" }),
      h("thead", null, h("tr", null, ["Waiting", "Status", "Assignee", "Reason", "Last message"].map(function (t) { return h("th", { scope: "col", text: t }); }))),
      body);
    var empty = h("p", { class: "empty", text: "Nobody is waiting." });
    view.appendChild(h("h1", { text: "Inbox" }));
    view.appendChild(table);
    view.appendChild(empty);
    function refresh() {
      api("/inbox").then(function (data) {
        body.textContent = "";
        empty.hidden = data.count > 0;
        data.conversations.forEach(function (item) {
          var link = h("a", { href: "#conversation/" + item.conversation_id, text: item.last_customer_message || "(no message)" });
          body.appendChild(h("tr", { "data-conversation": item.conversation_id },
            h("td", { text: duration(item.waiting_seconds) }),
            h("td", { text: item.status.replace(/_/g, " ") }),
            h("td", { text: item.assignee || "—" }),
            h("td", { text: item.handoff ? item.handoff.reason.replace(/_/g, " ") : "" }),
            h("td", null, link)));
        });
      }).catch(failed);
    }
    refresh();
    timers.push(setInterval(refresh, 2000));
  }

  // --- one conversation ------------------------------------------------------------------
  function conversation(id) {
    var messages = h("ol", { class: "messages", "aria-label": "Messages" });
    var packet = h("section", { class: "packet", "aria-label": "Handoff packet" });
    var header = h("h1", { text: "Conversation" });
    var status = h("p", { class: "status" });
    var reply = h("textarea", { id: "reply-text", rows: 3, required: true, "aria-label": "Reply to the customer" });
    var replyForm = h("form", { class: "reply", onsubmit: function (event) {
      event.preventDefault();
      if (!reply.value.trim()) return;
      api("/conversations/" + id + "/replies", { method: "POST", body: { agent: agent(), text: reply.value.trim() } })
        .then(function () { reply.value = ""; say("Reply sent."); load(); }).catch(failed);
    } }, reply, h("button", { type: "submit", text: "Send reply" }));
    function action(label, path, done) {
      return h("button", { type: "button", text: label, onclick: function () {
        api("/conversations/" + id + "/" + path, { method: "POST", body: { agent: agent() } })
          .then(function (state) { done(state); load(); }).catch(failed);
      } });
    }
    var actions = h("div", { class: "actions" },
      action("Assign to me", "assign", function () { say("Assigned to you."); }),
      action("Resolve", "resolve", function (state) {
        say(state.suggestion_id ? "Resolved. A knowledge suggestion was drafted from your reply." : "Resolved.");
      }),
      action("Hand back to the assistant", "handback", function () { say("Handed back."); }));
    view.appendChild(h("p", null, h("a", { href: "#inbox", text: "← Inbox" })));
    view.appendChild(header);
    view.appendChild(status);
    view.appendChild(h("div", { class: "split" }, h("div", null, messages, replyForm, actions), packet));

    function load() {
      api("/inbox/" + id).then(function (data) {
        var c = data.conversation;
        status.textContent = "Status: " + c.status.replace(/_/g, " ") + (data.assignee ? " · assigned to " + data.assignee : "");
        messages.textContent = "";
        c.messages.forEach(function (m) {
          var who = m.role === "agent" ? "Support team" + (m.author ? " · " + m.author : "") : m.role;
          messages.appendChild(h("li", { class: "msg " + m.role },
            h("span", { class: "who", text: who + " · " + when(m.created_at) + (m.rating ? " · rated " + m.rating : "") }),
            h("p", { text: m.text })));
        });
        var last = data.handoffs[data.handoffs.length - 1];
        packet.textContent = "";
        packet.appendChild(h("h2", { text: "Handoff" }));
        if (!last) { packet.appendChild(h("p", { text: "Not handed off." })); return; }
        var p = last.packet;
        packet.appendChild(h("dl", null,
          h("dt", { text: "Reason" }), h("dd", { class: "reason", text: p.reason.replace(/_/g, " ") }),
          h("dt", { text: "Customer asked" }), h("dd", { text: p.customer_message }),
          p.standalone_question ? [h("dt", { text: "Standalone question" }), h("dd", { text: p.standalone_question })] : null,
          h("dt", { text: "Confidence" }), h("dd", { class: "confidence", text: p.confidence === null ? "—" : p.confidence.toFixed(2) }),
          h("dt", { text: "Handed off" }), h("dd", { text: when(last.created_at) + (last.webhook_status ? " · webhook " + last.webhook_status : "") }),
          p.fallback_reason && !p.draft ? [h("dt", { text: "Why" }), h("dd", { class: "why", text: p.fallback_reason === "unmentioned_subject" ? "The best entry names nothing of what was asked for" : p.fallback_reason })] : null,
          p.draft ? [h("dt", { text: "Rejected draft" }), h("dd", { class: "draft", text: p.draft + (p.fallback_reason ? " (" + p.fallback_reason + ")" : "") })] : null,
          p.error ? [h("dt", { text: "Error" }), h("dd", { text: p.error })] : null));
        packet.appendChild(h("table", { class: "sources" },
          h("caption", { text: "Entries retrieved" }),
          h("thead", null, h("tr", null, h("th", { scope: "col", text: "Entry" }), h("th", { scope: "col", text: "Score" }))),
          h("tbody", null, p.sources.map(function (s) {
            return h("tr", null, h("td", { text: s.question }), h("td", { text: s.score.toFixed(3) }));
          }))));
        data.ratings.filter(function (r) { return r.comment; }).forEach(function (r) {
          packet.appendChild(h("p", { class: "comment", text: "Rated " + r.rating + ": “" + r.comment + "”" }));
        });
      }).catch(failed);
    }
    load();
    var events = new EventSource(prefix + "/conversations/" + id + "/events");
    ["message", "status"].forEach(function (kind) { events.addEventListener(kind, load); });
    sources.push(events);
  }

  // --- knowledge --------------------------------------------------------------------------
  function knowledge() {
    var search = h("input", { type: "search", id: "entry-search", "aria-label": "Search the entries", placeholder: "Search entries…" });
    var entries = h("div", { class: "entries" });
    var suggestions = h("div", { class: "suggestions" });
    var history = h("tbody");
    view.appendChild(h("h1", { text: "Knowledge" }));
    view.appendChild(h("h2", { text: "Suggestions from resolved conversations" }));
    view.appendChild(suggestions);
    view.appendChild(h("h2", { text: "Entries" }));
    view.appendChild(h("form", { class: "search", role: "search", onsubmit: function (e) { e.preventDefault(); loadEntries(); } },
      search, h("button", { type: "submit", text: "Search" })));
    view.appendChild(entryForm(null, function () { loadEntries(); loadHistory(); }));
    view.appendChild(entries);
    view.appendChild(h("h2", { text: "History of changes" }));
    view.appendChild(h("table", { class: "history" },
      h("thead", null, h("tr", null, ["When", "Who", "What", "Entry", "After"].map(function (t) { return h("th", { scope: "col", text: t }); }))),
      history));

    function loadSuggestions() {
      api("/knowledge/suggestions").then(function (data) {
        suggestions.textContent = "";
        if (!data.count) suggestions.appendChild(h("p", { class: "empty", text: "No suggestions waiting." }));
        data.suggestions.forEach(function (s) {
          var question = h("input", { value: s.question, "aria-label": "Suggested question", class: "wide" });
          var answer = h("textarea", { rows: 4, "aria-label": "Suggested answer", class: "wide" });
          answer.value = s.answer;
          var similar = s.similar === null
            ? h("p", { text: "Comparing with the entries…" })
            : h("ul", { class: "similar", "aria-label": "Similar entries" }, s.similar.map(function (e) {
              return h("li", { class: e.id === s.duplicate_of ? "duplicate" : "" },
                h("strong", { text: e.question + " (" + e.score.toFixed(2) + (e.id === s.duplicate_of ? ", near-duplicate" : "") + ")" }),
                h("p", { text: e.answer }),
                // The entry answered it already: teach it the customer's words instead of a new
                // entry. Only a Q:/A: entry has questions to add to; a passage has a heading.
                e.kind === "passage" ? null : h("button", { type: "button", text: "Add the question as a phrasing of this entry", "aria-label": "Add the question as a phrasing of: " + e.question, onclick: function () {
                  api("/knowledge/suggestions/" + s.id + "/approve", { method: "POST", body: { question: question.value, phrasing_of: e.id, agent: agent() } })
                    .then(function (r) { say("Added as a phrasing: knowledge version " + r.version + "."); loadSuggestions(); loadEntries(); loadHistory(); }).catch(failed);
                } }));
            }));
          suggestions.appendChild(h("article", { class: "suggestion", "data-suggestion": s.id },
            h("div", null, h("h3", { text: "Suggested entry: " + s.question }),
              h("p", null, h("a", { href: "#conversation/" + s.conversation_id, text: "From this conversation" })),
              question, answer,
              h("div", { class: "actions" },
                h("button", { type: "button", text: "Approve", onclick: function () {
                  api("/knowledge/suggestions/" + s.id + "/approve", { method: "POST", body: { question: question.value, answer: answer.value, agent: agent() } })
                    .then(function (r) { say("Approved: knowledge version " + r.version + "."); loadSuggestions(); loadEntries(); loadHistory(); }).catch(failed);
                } }),
                h("button", { type: "button", text: "Reject", onclick: function () {
                  api("/knowledge/suggestions/" + s.id + "/reject", { method: "POST", body: { agent: agent() } })
                    .then(function () { say("Rejected."); loadSuggestions(); }).catch(failed);
                } }))),
            h("div", null, h("h3", { text: "Similar entries" }), similar)));
        });
      }).catch(failed);
    }

    function loadEntries() {
      var q = search.value.trim();
      api("/knowledge/entries" + (q ? "?q=" + encodeURIComponent(q) : "")).then(function (data) {
        entries.textContent = "";
        entries.appendChild(h("p", { class: "version", text: data.count + " entries · version " + data.version }));
        data.entries.forEach(function (e) {
          var box = h("details", { class: "entry" }, h("summary", { text: e.question + "  ·  " + e.source }),
            e.phrasings.length ? h("p", { class: "phrasings", text: "Also asked: " + e.phrasings.join(" · ") }) : null,
            h("p", { text: e.answer }));
          if (e.kind === "qa") box.appendChild(entryForm(e, function () { loadEntries(); loadHistory(); }));
          entries.appendChild(box);
        });
      }).catch(failed);
    }

    function loadHistory() {
      api("/knowledge/changes").then(function (data) {
        history.textContent = "";
        data.changes.forEach(function (c) {
          history.appendChild(h("tr", null, h("td", { text: when(c.created_at) }), h("td", { text: c.actor }),
            h("td", { text: c.action }), h("td", { text: c.entry_id }),
            h("td", { text: c.after ? c.after.question + phrasingsOf(c.after) + " — " + c.after.answer : "(removed)" })));
        });
      }).catch(failed);
    }
    loadSuggestions(); loadEntries(); loadHistory();
  }

  function phrasingsOf(text) {
    return text.phrasings && text.phrasings.length ? " (also: " + text.phrasings.join(" · ") + ")" : "";
  }

  function entryForm(entry, done) {
    var question = h("input", { class: "wide", "aria-label": "Question", value: entry ? entry.question : "", required: true });
    var answer = h("textarea", { class: "wide", rows: 3, "aria-label": "Answer", required: true });
    answer.value = entry ? entry.answer : "";
    var phrasings = h("textarea", { class: "wide", rows: 2, "aria-label": "Other phrasings, one a line" });
    phrasings.defaultValue = entry ? entry.phrasings.join("\n") : "";
    var form = h("form", { class: "entry-form", onsubmit: function (event) {
      event.preventDefault();
      var body = { question: question.value, answer: answer.value, agent: agent() };
      // Sent only when changed here: a phrasing added meanwhile (say, by an approval) is kept.
      if (phrasings.value !== phrasings.defaultValue) {
        body.phrasings = phrasings.value.split("\n").map(function (line) { return line.trim(); }).filter(Boolean);
      }
      var request = entry
        ? api("/knowledge/entries/" + encodeURIComponent(entry.id), { method: "PUT", body: body })
        : api("/knowledge/entries", { method: "POST", body: body });
      request.then(function (r) { say("Saved: knowledge version " + r.version + "."); done(); }).catch(failed);
    } }, h("h3", { text: entry ? "Edit" : "Add an entry" }), question,
      h("label", { text: "Other ways customers ask it (one a line)" }, phrasings), answer,
      h("button", { type: "submit", text: entry ? "Save" : "Add" }),
      entry ? h("button", { type: "button", text: "Remove", onclick: function () {
        if (!confirm("Remove this entry?")) return;
        api("/knowledge/entries/" + encodeURIComponent(entry.id) + "?agent=" + encodeURIComponent(agent()), { method: "DELETE" })
          .then(function () { say("Removed."); done(); }).catch(failed);
      } }) : null);
    return form;
  }

  // --- analytics --------------------------------------------------------------------------
  function analytics() {
    var days = 7;
    var until = new Date(); until.setHours(24, 0, 0, 0);
    var since = new Date(until.getTime() - days * 86400000);
    var period = "since=" + since.toISOString() + "&until=" + until.toISOString();
    var summary = h("section", { class: "summary", "aria-label": "Figures of the last 7 days" });
    var charts = h("section", { class: "charts" });
    var gaps = h("ol", { class: "gaps", "aria-label": "Knowledge gaps, the largest first" });
    view.appendChild(h("h1", { text: "Analytics — the last 7 days" }));
    view.appendChild(h("p", { class: "exports" },
      h("a", { class: "button", href: prefix + "/analytics/export?format=csv&" + period, download: "", text: "Export CSV" }), " ",
      h("a", { class: "button", href: prefix + "/analytics/export?format=jsonl&" + period, download: "", text: "Export JSON lines" })));
    view.appendChild(summary);
    view.appendChild(charts);
    view.appendChild(h("h2", { text: "Knowledge gaps" }));
    view.appendChild(gaps);

    api("/analytics?" + period).then(function (report) {
      var c = report.counts, r = report.rates;
      function pct(x) { return x === null ? "—" : Math.round(x * 100) + " %"; }
      summary.appendChild(h("dl", { class: "figures" }, [
        ["Conversations", c.conversations], ["Customer messages", c.customer_messages],
        ["Assistant answers", c.assistant_answers], ["Handoffs", c.handoffs], ["Agent replies", c.agent_replies],
        ["Thumbs up", c.thumbs_up], ["Thumbs down", c.thumbs_down],
        ["Involvement", pct(r.involvement)], ["Resolution", pct(r.resolution)], ["Handoff rate", pct(r.handoff)],
        ["Median first answer", report.timings.median_first_answer_seconds === null ? "—" : duration(report.timings.median_first_answer_seconds)],
        ["Median handoff wait", report.timings.median_handoff_wait_seconds === null ? "—" : duration(report.timings.median_handoff_wait_seconds)]
      ].map(function (pair) { return h("div", { "data-figure": pair[0] }, h("dt", { text: pair[0] }), h("dd", { text: String(pair[1]) })); })));
      charts.appendChild(barChart("Thumbs", [["up", c.thumbs_up], ["down", c.thumbs_down]], function (v) { return String(v); }));
      if (!report.gaps.length) gaps.appendChild(h("li", { class: "empty", text: "No gaps in this period." }));
      report.gaps.forEach(function (gap) {
        gaps.appendChild(h("li", null,
          h("strong", { text: gap.count + " × " }), h("span", { text: gap.examples[0].question }),
          gap.covered_by.length ? h("span", { class: "covered", text: " (a suggestion covers it)" }) : null,
          h("ul", null, gap.examples.slice(1).map(function (e) { return h("li", { text: e.question + " (" + e.why.replace(/_/g, " ") + ")" }); }))));
      });
    }).catch(failed);

    // One report a day for the charts over time.
    var dayReports = [];
    for (var i = 0; i < days; i++) {
      var start = new Date(since.getTime() + i * 86400000), end = new Date(start.getTime() + 86400000);
      dayReports.push(api("/analytics?since=" + start.toISOString() + "&until=" + end.toISOString())
        .then((function (s) { return function (report) { return [s, report]; }; })(start)));
    }
    Promise.all(dayReports).then(function (list) {
      function label(d) { return (d.getMonth() + 1) + "/" + d.getDate(); }
      charts.insertBefore(barChart("Conversations per day", list.map(function (p) { return [label(p[0]), p[1].counts.conversations]; }), String), charts.firstChild);
      charts.appendChild(barChart("Handoff rate per day", list.map(function (p) { return [label(p[0]), p[1].rates.handoff || 0]; }), function (v) { return Math.round(v * 100) + " %"; }, 1));
      charts.appendChild(barChart("Resolution rate per day", list.map(function (p) { return [label(p[0]), p[1].rates.resolution || 0]; }), function (v) { return Math.round(v * 100) + " %"; }, 1));
    }).catch(failed);
  }

  function barChart(title, points, format, ceiling) {
    var width = 320, height = 150, pad = 24;
    var max = ceiling || Math.max.apply(null, points.map(function (p) { return p[1]; }).concat([1]));
    var step = (width - pad) / points.length;
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 " + width + " " + (height + 20));
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", title + ": " + points.map(function (p) { return p[0] + " " + format(p[1]); }).join(", "));
    points.forEach(function (p, i) {
      var barHeight = (p[1] / max) * (height - pad);
      var rect = document.createElementNS(ns, "rect");
      rect.setAttribute("x", pad + i * step + 4);
      rect.setAttribute("y", height - barHeight);
      rect.setAttribute("width", Math.max(step - 8, 2));
      rect.setAttribute("height", barHeight);
      rect.setAttribute("class", "bar");
      var tip = document.createElementNS(ns, "title");
      tip.textContent = p[0] + ": " + format(p[1]);
      rect.appendChild(tip);
      svg.appendChild(rect);
      var value = document.createElementNS(ns, "text");
      value.setAttribute("x", pad + i * step + step / 2);
      value.setAttribute("y", height - barHeight - 4);
      value.setAttribute("text-anchor", "middle");
      value.textContent = format(p[1]);
      svg.appendChild(value);
      var name = document.createElementNS(ns, "text");
      name.setAttribute("x", pad + i * step + step / 2);
      name.setAttribute("y", height + 14);
      name.setAttribute("text-anchor", "middle");
      name.textContent = p[0];
      svg.appendChild(name);
    });
    return h("figure", { class: "chart", "data-chart": title }, h("figcaption", { text: title }), svg);
  }

  route();
})();
