/* support-assistant chat widget.
 *
 * Embed: <script src="https://support.example.com/widget.js" data-key="PUBLIC_KEY" async></script>
 * Optional: data-identity="<signed identity token>", data-title="Help".
 *
 * It lives in its own shadow root (the page's CSS cannot reach it), talks only to the server it was
 * loaded from, keeps the conversation's id and token in localStorage (a reload or the next page
 * continues it) and follows the conversation's event stream: the answer arrives sentence by
 * sentence, a person's reply appears live. No third-party requests, no cookies.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__supportAssistantWidget) return;
  window.__supportAssistantWidget = true;

  var base = new URL(script.src, document.baseURI).origin;
  var api = base + (script.getAttribute("data-prefix") || "/api/v1");
  var key = script.getAttribute("data-key") || "";
  var identity = script.getAttribute("data-identity") || "";
  var title = script.getAttribute("data-title") || "Help";
  // One stored conversation per site, key and signed-in customer: another customer signing in on
  // the same browser never continues someone else's conversation.
  var storageKey = "support-assistant:" + base + ":" + key.slice(0, 8) + ":" + subject(identity);

  function subject(token) {
    if (!token) return "anonymous";
    try {
      var part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return "customer:" + JSON.parse(atob(part)).sub;
    } catch (e) { return "customer:" + token.slice(-16); }
  }

  var STYLE = [
    // !important here wins over the page's own !important rules on the host element.
    ":host{all:initial !important;display:block !important;position:fixed !important;",
    "right:20px !important;bottom:20px !important;z-index:2147483000 !important}",
    ".panel,.launcher{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1b1f24}",
    "*{box-sizing:border-box}",
    ".launcher{width:56px;height:56px;border-radius:50%;border:0;background:#1f5fbf;color:#fff;",
    "cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);font-size:26px;line-height:56px}",
    ".launcher:focus-visible,button:focus-visible,textarea:focus-visible{outline:3px solid #f5a623;outline-offset:2px}",
    ".panel{position:absolute;right:0;bottom:70px;width:370px;max-width:calc(100vw - 24px);",
    "height:540px;max-height:calc(100vh - 100px);background:#fff;border-radius:12px;",
    "box-shadow:0 10px 40px rgba(0,0,0,.25);display:flex;flex-direction:column;overflow:hidden}",
    ".panel[hidden]{display:none}",
    "header{background:#1f5fbf;color:#fff;padding:12px 14px;display:flex;align-items:center;gap:8px}",
    "header h2{font-size:16px;margin:0;flex:1}",
    "header button{background:transparent;border:0;color:#fff;font-size:22px;cursor:pointer;line-height:1}",
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:10px;background:#f6f8fa}",
    ".msg{max-width:85%;padding:8px 11px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word}",
    ".customer{align-self:flex-end;background:#1f5fbf;color:#fff}",
    ".assistant,.agent{align-self:flex-start;background:#fff;border:1px solid #d0d7de}",
    ".agent{border-color:#2da44e;background:#f0fff4}",
    ".system{align-self:center;background:#fff8c5;border:1px solid #d4a72c;font-size:13px}",
    ".who{display:block;font-size:12px;color:#57606a;margin-bottom:2px}",
    ".sources{margin:6px 0 0;padding:0;list-style:none;font-size:12px;color:#57606a}",
    ".sources li::before{content:'Source: '}",
    ".rate{margin-top:6px;display:flex;gap:6px}",
    ".rate button{border:1px solid #d0d7de;background:#fff;border-radius:6px;cursor:pointer;padding:3px 7px;line-height:0;color:#57606a}",
    ".rate svg,.launcher svg{width:16px;height:16px;fill:currentColor}.launcher svg{width:26px;height:26px;vertical-align:middle}",
    ".rate button[aria-pressed=true]{background:#ddf4ff;border-color:#1f5fbf}",
    ".notice{align-self:stretch;text-align:center;font-size:13px;background:#ddf4ff;border:1px solid #54aeff;border-radius:8px;padding:6px}",
    "form{display:flex;gap:8px;padding:10px;border-top:1px solid #d0d7de;background:#fff}",
    "textarea{flex:1;resize:none;height:44px;border:1px solid #8c959f;border-radius:8px;padding:8px;font:inherit}",
    "form button{border:0;background:#1f5fbf;color:#fff;border-radius:8px;padding:0 14px;cursor:pointer;font:inherit}",
    "form button:disabled{opacity:.6;cursor:default}",
    ".sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}",
    "@media (max-width:480px){:host{right:8px !important;bottom:8px !important}.panel{position:fixed;inset:0;width:auto;height:auto;max-width:none;max-height:none;border-radius:0}}"
  ].join("");

  var host = document.createElement("div");
  host.setAttribute("data-support-assistant", "");
  var root = host.attachShadow({ mode: "open" });
  root.innerHTML =
    "<style>" + STYLE + "</style>" +
    '<div class="panel" role="dialog" aria-modal="false" aria-labelledby="sa-title" hidden>' +
    '<header><h2 id="sa-title"></h2><button type="button" class="close" aria-label="Close the chat">×</button></header>' +
    '<div class="log" role="log" aria-live="polite" aria-relevant="additions text" tabindex="0" aria-label="Conversation"></div>' +
    '<form><label class="sr-only" for="sa-input">Your message</label>' +
    '<textarea id="sa-input" placeholder="Ask a question…" maxlength="2000" required></textarea>' +
    '<button type="submit">Send</button></form></div>' +
    '<button type="button" class="launcher" aria-expanded="false" aria-label="Open the chat: ask a question">' +
    '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z"/></svg></button>';
  var panel = root.querySelector(".panel");
  var log = root.querySelector(".log");
  var form = root.querySelector("form");
  var input = root.querySelector("textarea");
  var send = root.querySelector("form button");
  var launcher = root.querySelector(".launcher");
  root.querySelector("#sa-title").textContent = title;

  var state = load();
  var shown = {}; // message id -> element
  var writing = {}; // question id -> element of the answer being written
  var stream = null;

  function load() {
    try { return JSON.parse(localStorage.getItem(storageKey) || "null"); } catch (e) { return null; }
  }
  function save(value) {
    state = value;
    try { localStorage.setItem(storageKey, JSON.stringify(value)); } catch (e) { /* private mode */ }
  }
  function headers(extra) {
    var h = { "Content-Type": "application/json" };
    if (key) h.Authorization = "Bearer " + key;
    if (identity) h["X-Identity-Token"] = identity;
    if (state && state.token) h["X-Conversation-Token"] = state.token;
    for (var name in extra || {}) h[name] = extra[name];
    return h;
  }

  function open() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", "Close the chat");
    input.focus();
    if (state && !stream) follow();
  }
  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", "Open the chat: ask a question");
    launcher.focus();
  }
  launcher.addEventListener("click", function () { panel.hidden ? open() : close(); });
  root.querySelector(".close").addEventListener("click", close);
  panel.addEventListener("keydown", function (event) { if (event.key === "Escape") close(); });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    send.disabled = true;
    start().then(function () {
      return fetch(api + "/conversations/" + state.id + "/messages", {
        method: "POST",
        headers: headers({ Prefer: "respond-async" }),
        body: JSON.stringify({ text: text })
      });
    }).then(function (response) {
      if (!response.ok) return response.json().then(function (body) { throw body; });
      input.value = "";
    }).catch(function (error) {
      notice((error && error.error && error.error.message) || "The message could not be sent. Please try again.");
    }).then(function () { send.disabled = false; input.focus(); });
  });

  function start() {
    if (state) return Promise.resolve();
    return fetch(api + "/conversations", { method: "POST", headers: headers() })
      .then(function (response) {
        if (!response.ok) throw new Error("cannot start a conversation");
        return response.json();
      })
      .then(function (body) {
        save({ id: body.conversation_id, token: body.token });
        follow();
      });
  }

  // The conversation's events over fetch (EventSource cannot send the key), reconnecting.
  function follow() {
    var controller = new AbortController();
    stream = controller;
    var retry = 1000;
    function connect() {
      if (stream !== controller) return;
      fetch(api + "/conversations/" + state.id + "/events", {
        headers: headers({ Accept: "text/event-stream" }),
        signal: controller.signal
      }).then(function (response) {
        if (response.status === 404) { forget(); return; }
        if (!response.ok || !response.body) throw new Error("stream " + response.status);
        retry = 1000;
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) throw new Error("stream ended");
            buffer += decoder.decode(chunk.value, { stream: true });
            var blocks = buffer.split("\n\n");
            buffer = blocks.pop();
            blocks.forEach(dispatch);
            return pump();
          });
        }
        return pump();
      }).catch(function () {
        if (stream !== controller) return;
        setTimeout(connect, retry);
        retry = Math.min(retry * 2, 15000);
      });
    }
    connect();
  }

  function forget() { // the conversation was erased (or expired): start afresh next time
    stream = null;
    try { localStorage.removeItem(storageKey); } catch (e) { /* ignore */ }
    state = null;
  }

  function dispatch(block) {
    var kind = "message", data = [];
    block.split("\n").forEach(function (line) {
      if (line.indexOf("event:") === 0) kind = line.slice(6).trim();
      else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
    });
    if (!data.length) return;
    var payload;
    try { payload = JSON.parse(data.join("\n")); } catch (e) { return; }
    if (kind === "message") showMessage(payload);
    else if (kind === "token") showToken(payload);
    else if (kind === "reset") { var el = writing[payload.question_id]; if (el) el.querySelector(".text").textContent = ""; }
    else if (kind === "status") showStatus(payload);
    else if (kind === "turn" && payload.status === "failed") delete writing[payload.question_id];
  }

  function bubble(role, who) {
    var el = document.createElement("div");
    el.className = "msg " + role;
    if (who) {
      var label = document.createElement("span");
      label.className = "who";
      label.textContent = who;
      el.appendChild(label);
    }
    var text = document.createElement("span");
    text.className = "text";
    el.appendChild(text);
    log.appendChild(el);
    return el;
  }

  function showToken(payload) {
    var el = writing[payload.question_id];
    if (!el) {
      el = bubble("assistant", "Assistant");
      el.setAttribute("aria-busy", "true");
      writing[payload.question_id] = el;
    }
    el.querySelector(".text").textContent += payload.text;
    scroll();
  }

  function showMessage(message) {
    if (shown[message.id]) return;
    var who = { customer: "", assistant: "Assistant", agent: "Support team" + (message.author ? " · " + message.author : ""), system: "" }[message.role];
    var el = (message.role === "assistant" && message.question_id && writing[message.question_id]) || bubble(message.role, who);
    if (message.question_id) delete writing[message.question_id];
    el.removeAttribute("aria-busy");
    el.setAttribute("data-message-id", message.id);
    el.querySelector(".text").textContent = message.text;
    if (message.role === "agent") el.setAttribute("aria-label", "Reply from a person of the support team");
    if (message.sources && message.sources.length && message.action === "answer") {
      var list = document.createElement("ul");
      list.className = "sources";
      list.setAttribute("aria-label", "Sources");
      message.sources.slice(0, 1).forEach(function (source) {
        var item = document.createElement("li");
        item.textContent = source.question;
        list.appendChild(item);
      });
      el.appendChild(list);
    }
    // A greeting or thanks answered in kind is no answer to rate.
    if ((message.role === "assistant" || message.role === "agent") && message.origin !== "courtesy") {
      el.appendChild(rating(message));
    }
    if (message.action === "handoff") handoffNotice();
    shown[message.id] = el;
    scroll();
  }

  function rating(message) {
    var box = document.createElement("div");
    box.className = "rate";
    [["up", THUMB, "Helpful"], ["down", THUMB_DOWN, "Not helpful"]].forEach(function (choice) {
      var button = document.createElement("button");
      button.type = "button";
      button.innerHTML = choice[1]; // our own constant icon, never text from the API
      button.setAttribute("aria-label", choice[2]);
      button.setAttribute("aria-pressed", message.rating === choice[0] ? "true" : "false");
      button.addEventListener("click", function () {
        fetch(api + "/conversations/" + state.id + "/messages/" + message.id + "/feedback", {
          method: "POST", headers: headers(), body: JSON.stringify({ rating: choice[0] })
        }).then(function (response) {
          if (!response.ok) return;
          box.querySelectorAll("button").forEach(function (other) { other.setAttribute("aria-pressed", "false"); });
          button.setAttribute("aria-pressed", "true");
        });
      });
      box.appendChild(button);
    });
    return box;
  }

  var THUMB = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M2 10h4v11H2zM8 21V10l5-8c1.7 0 2.6 1.2 2.2 2.8L14.3 9H20a2 2 0 0 1 2 2.3l-1.4 8A2 2 0 0 1 18.6 21z"/></svg>';
  var THUMB_DOWN = '<svg viewBox="0 0 24 24" aria-hidden="true" style="transform:rotate(180deg)"><path d="M2 10h4v11H2zM8 21V10l5-8c1.7 0 2.6 1.2 2.2 2.8L14.3 9H20a2 2 0 0 1 2 2.3l-1.4 8A2 2 0 0 1 18.6 21z"/></svg>';
  var handedOff = false;
  function handoffNotice() {
    if (handedOff) return;
    handedOff = true;
    notice("A person will reply here.");
  }
  function showStatus(payload) {
    if (payload.status === "waiting_for_agent" || payload.status === "assigned") handoffNotice();
    else if (payload.status === "open" || payload.status === "resolved") handedOff = false;
    if (payload.status === "deleted") forget();
  }
  function notice(text) {
    var el = document.createElement("div");
    el.className = "notice";
    el.setAttribute("role", "status");
    el.textContent = text;
    log.appendChild(el);
    scroll();
  }
  function scroll() { log.scrollTop = log.scrollHeight; }

  function attach() {
    document.body.appendChild(host);
    if (state) follow();
  }
  if (document.body) attach(); else document.addEventListener("DOMContentLoaded", attach);
})();
