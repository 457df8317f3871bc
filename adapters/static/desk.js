/*!
 * Xiaoer (店小二) agent desk.
 *
 * Served at /desk/ (with desk.css) once the agent is logged in. Talks to the bot over the desk WebSocket
 * (<base>/desk/ws, authenticated by the session cookie). Protocol and user guide: docs/desk.md.
 *
 * Plain ES2018, no build step, no dependencies. Server and customer text is only ever inserted with
 * textContent / text nodes, never innerHTML.
 */
(function () {
  "use strict";

  // ---------------------------------------------------------------------------------------------
  // Constants
  // ---------------------------------------------------------------------------------------------
  // The desk lives in a directory (normally /desk/); the API and the socket are relative to it, so the
  // desk also works behind a reverse proxy that mounts the bot under a path.
  const BASE = location.pathname.replace(/[^/]*$/, "") || "/";
  const FILES = BASE.replace(/desk\/$/, "") + "files/"; // images are served beside the desk
  const WS_URL = (location.protocol === "https:" ? "wss:" : "ws:") + "//" + location.host + BASE + "ws";
  const PING_MS = 25000;
  const DEAD_MS = 70000; // nothing heard for this long while open: consider the socket dead
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  const CLOSE_UNAUTHORIZED = 4401;
  const URGENT_S = 15; // first-response countdown turns red below this
  const LONG_WAIT_S = 120; // queue waiting time turns red above this
  const NOTICE_MS = 6000;
  const NOTICE_ERROR_MS = 10000;
  const MAX_NOTICES = 3;
  const KEY_401 = "xiaoer.desk.unauthorized_at";
  const TITLE = "店小二客服台";

  const CHANNELS = { web: "网页", wechat: "微信公众号", wecom_kf: "企业微信", telegram: "Telegram" };
  const REASONS = {
    request: "顾客要求人工",
    misses: "机器人未能解答",
    complaint: "投诉",
    off_hours: "非工作时间留言",
    transfer: "同事转接",
    reassigned: "超时改派",
  };
  const UNASSIGNED = {
    first_response_timeout: ["会话已转给其他客服：首次响应超时", "warn"],
    transfer: ["已转接", "ok"],
    closed: ["会话已结束", "info"],
    idle: ["会话已结束：顾客长时间未回复", "info"],
    unsubscribe: ["会话已结束：顾客已取消关注", "info"],
  };
  const LOCALES = { "zh-CN": "简体中文", "zh-TW": "繁體中文", en: "English" };
  const FROM = ["customer", "agent", "bot", "system"];

  // ---------------------------------------------------------------------------------------------
  // State
  // ---------------------------------------------------------------------------------------------
  const S = {
    ws: null,
    connected: false, // hello received on the current socket
    everConnected: false,
    stopped: false, // logging out / unauthorized: no more reconnects
    attempt: 0,
    retryTimer: 0,
    pingTimer: 0,
    lastRecv: 0,
    me: { username: "", display_name: "", groups: [], capacity: 0 },
    status: "online",
    statusPending: null,
    shop: "",
    groups: [],
    agents: [],
    chats: new Map(), // id -> chat
    order: [], // chat ids in display order
    queue: [],
    phrases: [],
    selected: null,
    drafts: new Map(), // conversation id -> unsent text
    coach: new Map(), // conversation id -> {text, warnings}
    lastSent: new Map(), // conversation id -> text of the last reply sent (restored on error)
    hiddenUnread: 0,
    picking: null, // a queued chat we asked for: opened when it is assigned
    mode: "reply", // "reply" to the buyer or "note" (internal)
    typing: new Map(), // conversation id -> ms when the buyer last typed
    typedAt: 0, // ms when we last told the server we type
    viewCase: null, // a closed case open read-only in the centre
    pastCases: null, // {conversation, cases} for the info panel
    slash: { open: false, items: [], index: 0 },
  };
  const TYPING_SHOW_MS = 6000;
  const TYPING_SEND_MS = 3000;

  // ---------------------------------------------------------------------------------------------
  // Small helpers
  // ---------------------------------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);

  /** h("div", {class: "x", "data-a": 1}, "text", child…) — strings become text nodes. */
  function h(tag, attrs) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const k in attrs) {
        const v = attrs[k];
        if (v == null || v === false) continue;
        if (k === "class") el.className = v;
        else if (k === "text") el.textContent = v;
        else if (k.slice(0, 2) === "on" && typeof v === "function") el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (let i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }

  function append(el, c) {
    if (c == null || c === false) return;
    if (Array.isArray(c)) c.forEach((x) => append(el, x));
    else if (typeof c === "object" && c.nodeType) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }

  const str = (v) => (v == null ? "" : String(v));
  const num = (v) => (typeof v === "number" && isFinite(v) ? v : null);
  const now = () => Date.now() / 1000;

  function pad2(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function formatTime(ts) {
    if (ts == null) return "";
    const d = new Date(ts * 1000);
    if (isNaN(d.getTime())) return "";
    const hm = pad2(d.getHours()) + ":" + pad2(d.getMinutes());
    const today = new Date();
    if (d.toDateString() === today.toDateString()) return hm;
    const md = pad2(d.getMonth() + 1) + "-" + pad2(d.getDate());
    if (d.getFullYear() === today.getFullYear()) return md + " " + hm;
    return d.getFullYear() + "-" + md + " " + hm;
  }

  function formatDate(ts) {
    if (ts == null) return "—";
    const d = new Date(ts * 1000);
    if (isNaN(d.getTime())) return "—";
    return d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + " " + pad2(d.getHours()) + ":" + pad2(d.getMinutes());
  }

  function dayLabel(ts) {
    const d = new Date(ts * 1000);
    if (isNaN(d.getTime())) return "";
    const today = new Date();
    if (d.toDateString() === today.toDateString()) return "今天";
    const y = new Date(today.getTime() - 86400000);
    if (d.toDateString() === y.toDateString()) return "昨天";
    return d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate());
  }

  function formatDuration(sec) {
    sec = Math.max(0, Math.floor(sec));
    const hh = Math.floor(sec / 3600);
    const mm = Math.floor((sec % 3600) / 60);
    const ss = sec % 60;
    return hh > 0 ? hh + ":" + pad2(mm) + ":" + pad2(ss) : mm + ":" + pad2(ss);
  }

  function hashColor(s) {
    let x = 0;
    s = str(s);
    for (let i = 0; i < s.length; i++) x = (x * 31 + s.charCodeAt(i)) | 0;
    // 24 hues x 2 lightness levels: two buyers rarely share a colour
    const n = Math.abs(x);
    return "hsl(" + (n % 24) * 15 + ", 55%, " + (Math.floor(n / 24) % 2 ? 46 : 56) + "%)";
  }

  /** The buyer's name, or "访客 3F2A" (a stable tag from the conversation id) for anonymous buyers. */
  function customerName(c) {
    const cust = (c && c.customer) || {};
    const name = str(cust.name).trim();
    if (name) return name;
    const tag = str(cust.tag).replace(/[^0-9A-Za-z]/g, "").slice(0, 8);
    return tag ? "访客 " + tag : "访客";
  }
  const channelLabel = (ch) => CHANNELS[ch] || str(ch) || "未知渠道";
  const reasonLabel = (r) => REASONS[r] || str(r);
  /** Why a chat (or a queued buyer) came to a human, as the server labels it: a coloured badge for a
   *  complaint, a dispute or a message left off hours; `plain` also shows an unflagged reason. */
  function reasonBadge(c, plain) {
    const label = str(c.reason_label) || (c.reason ? reasonLabel(c.reason) : "");
    if (!label) return null;
    if (!c.flag) return plain ? h("span", { class: "reason-label" }, label) : null;
    return h("span", { class: "badge flag flag-" + str(c.flag), "data-flag": str(c.flag), title: str(c.flag_label) }, label);
  }

  function groupLabel(name) {
    const g = S.groups.find((x) => x.name === name);
    return g ? str(g.display_name) || str(g.name) : str(name);
  }

  function agentLabel(username) {
    if (!username) return "客服";
    if (username === S.me.username) return str(S.me.display_name) || username;
    const a = S.agents.find((x) => x.username === username);
    return a ? str(a.display_name) || username : str(username);
  }

  function avatar(name, seed) {
    // anonymous buyers ("访客 3F2A") show their tag's first two characters, everyone else a first letter
    const anon = /^访客 ([0-9A-Za-z]{2})/.exec(str(name));
    const ch = anon ? anon[1] : Array.from(str(name).trim())[0] || "访";
    const el = h("div", { class: "avatar", "aria-hidden": "true" }, ch);
    el.style.background = hashColor(seed || name); // CSSOM, not a style attribute (fine under a strict CSP)
    return el;
  }

  function channelBadge(ch) {
    return h("span", { class: "badge", "data-channel": str(ch) }, channelLabel(ch));
  }

  // ---------------------------------------------------------------------------------------------
  // Notices (#notice holds a small stack of toasts)
  // ---------------------------------------------------------------------------------------------
  function notice(text, kind) {
    const box = $("notice");
    if (!box || !text) return;
    const t = h("div", { class: "toast", "data-kind": kind || "info", title: "点击关闭" }, text);
    t.addEventListener("click", () => t.remove());
    box.appendChild(t);
    while (box.children.length > MAX_NOTICES) box.firstChild.remove();
    setTimeout(() => t.remove(), kind === "error" || kind === "warn" ? NOTICE_ERROR_MS : NOTICE_MS);
  }

  // ---------------------------------------------------------------------------------------------
  // Alerts: a short beep (WebAudio, no sound file) and a desktop notification (with the browser's
  // permission) for a new chat and for a buyer's message in a chat that is not in view.
  // ---------------------------------------------------------------------------------------------
  const MUTE_KEY = "xiaoer.desk.muted";
  let audio = null;

  function muted() {
    try {
      return localStorage.getItem(MUTE_KEY) === "1";
    } catch (e) {
      return false;
    }
  }

  function unlockAudio() {
    // browsers start audio only after a user gesture: create/resume the context on the first click
    try {
      if (!audio && (window.AudioContext || window.webkitAudioContext)) audio = new (window.AudioContext || window.webkitAudioContext)();
      if (audio && audio.state === "suspended") audio.resume();
    } catch (e) {
      audio = null;
    }
  }

  function beep() {
    if (!audio || audio.state !== "running") return;
    const t = audio.currentTime;
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.setValueAtTime(880, t);
    osc.frequency.setValueAtTime(1320, t + 0.09);
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.18, t + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.25);
    osc.connect(gain).connect(audio.destination);
    osc.start(t);
    osc.stop(t + 0.26);
  }

  function alertAgent(title, body, id) {
    if (muted()) return;
    beep();
    if (!window.Notification || Notification.permission !== "granted") return;
    try {
      const n = new Notification(title, { body: str(body).slice(0, 140), tag: "xiaoer-" + id, renotify: true, silent: true });
      n.onclick = () => {
        window.focus();
        select(id);
        n.close();
      };
    } catch (e) {
      /* some browsers only allow notifications from a service worker */
    }
  }

  function renderNotify() {
    const btn = $("notify");
    if (!btn) return;
    const perm = window.Notification ? Notification.permission : "unsupported";
    const on = !muted();
    btn.setAttribute("data-on", on ? "true" : "false");
    btn.setAttribute("data-permission", perm);
    btn.querySelector(".notify-label").textContent = on ? "提醒开" : "提醒关";
    btn.title = !on
      ? "提醒已关闭 · 点击开启声音和桌面通知"
      : perm === "granted"
        ? "声音和桌面通知已开启 · 点击关闭"
        : perm === "denied"
          ? "声音已开启；桌面通知被浏览器拦截（可在地址栏的网站设置中允许）· 点击关闭"
          : "声音已开启 · 点击允许桌面通知";
  }

  function toggleNotify() {
    unlockAudio();
    const perm = window.Notification ? Notification.permission : "unsupported";
    if (!muted() && perm === "default") {
      Notification.requestPermission().then(renderNotify, renderNotify);
      return;
    }
    try {
      localStorage.setItem(MUTE_KEY, muted() ? "0" : "1");
    } catch (e) {
      /* ignore */
    }
    renderNotify();
    if (!muted()) beep();
  }

  // ---------------------------------------------------------------------------------------------
  // Model
  // ---------------------------------------------------------------------------------------------
  function normMessage(m) {
    const from = FROM.indexOf(m.from) >= 0 ? m.from : m.from === "visitor" ? "customer" : "system";
    const buttons = Array.isArray(m.buttons)
      ? m.buttons.filter((b) => b && typeof b === "object").map((b) => str(b.label || b.text))
      : [];
    return {
      id: m.id == null || m.id === "" ? null : str(m.id),
      from: from,
      text: str(m.text),
      ts: num(m.ts) == null ? now() : m.ts,
      agent: m.agent == null || m.agent === "" ? null : str(m.agent),
      image: /^[0-9a-f]{32}$/.test(str(m.image)) ? str(m.image) : "",
      buttons: buttons.filter(Boolean),
    };
  }

  function normNotes(list) {
    return (Array.isArray(list) ? list : [])
      .filter((n) => n && typeof n === "object")
      .map((n) => ({ id: str(n.id), from: "note", text: str(n.text), ts: num(n.ts) == null ? now() : n.ts, agent: str(n.agent), buttons: [] }));
  }

  /** A chat's lines and internal notes in time order (a note after the lines of the same moment). */
  function timeline(chat) {
    return chat.history.concat(chat.notes || []).sort((a, b) => a.ts - b.ts);
  }

  /** Builds a chat from a <conversation>; `prev` (same id, from before) keeps the unread count. */
  function makeChat(c, prev) {
    const chat = {
      id: str(c.id),
      channel: str(c.channel),
      customer: c.customer && typeof c.customer === "object" ? c.customer : {},
      history: [],
      ids: new Set(),
      assigned_at: num(c.assigned_at),
      first_reply_at: num(c.first_reply_at),
      first_response_deadline: num(c.first_response_deadline),
      group: str(c.group),
      reason: str(c.reason),
      reason_label: str(c.reason_label),
      flag: str(c.flag),
      flag_label: str(c.flag_label),
      unread: prev ? prev.unread : 0,
      notes: normNotes(c.notes),
    };
    for (const raw of Array.isArray(c.history) ? c.history : []) {
      if (!raw || typeof raw !== "object") continue;
      const m = normMessage(raw);
      if (m.id && chat.ids.has(m.id)) continue;
      if (m.id) chat.ids.add(m.id);
      chat.history.push(m);
      // messages that arrived while we were disconnected count as unread
      if (prev && m.id && !prev.ids.has(m.id) && m.from !== "agent" && S.selected !== chat.id) chat.unread += 1;
    }
    return chat;
  }

  function sortOrder() {
    S.order.sort((a, b) => {
      const x = S.chats.get(a).assigned_at || 0;
      const y = S.chats.get(b).assigned_at || 0;
      return x - y;
    });
  }

  function awaitingFirstReply(chat) {
    return chat.first_reply_at == null && chat.first_response_deadline != null;
  }

  function totalUnread() {
    let n = 0;
    S.chats.forEach((c) => (n += c.unread));
    return n + S.hiddenUnread;
  }

  function renderTitle() {
    const n = totalUnread();
    document.title = (n > 0 ? "(" + n + ") " : "") + (S.shop ? S.shop + " · " : "") + TITLE;
  }

  // ---------------------------------------------------------------------------------------------
  // Top bar
  // ---------------------------------------------------------------------------------------------
  function renderTop() {
    $("shop-name").textContent = S.shop || TITLE;
    $("agent-name").textContent = str(S.me.display_name) || str(S.me.username);
    const groups = (Array.isArray(S.me.groups) ? S.me.groups : []).map(groupLabel).filter(Boolean);
    $("agent-groups").textContent = groups.join(" · ");
    renderLoad();
    renderStatus();
    renderTitle();
  }

  function renderLoad() {
    const load = $("load");
    load.textContent = "";
    const cap = num(S.me.capacity);
    append(load, ["接待中 ", h("b", null, String(S.order.length)), cap != null ? " / " + cap : ""]);
  }

  function renderStatus() {
    const btn = $("status");
    const st = S.statusPending || S.status;
    btn.setAttribute("data-status", S.status);
    btn.setAttribute("aria-busy", S.statusPending ? "true" : "false");
    btn.querySelector(".status-label").textContent = S.status === "away" ? "离开" : "在线";
    btn.title = S.statusPending
      ? "正在切换…"
      : st === "away"
        ? "当前：离开（不接新会话）· 点击切换为在线"
        : "当前：在线 · 点击切换为离开";
  }

  function renderConn() {
    const el = $("conn");
    const app = $("app");
    let state;
    if (S.connected) state = "online";
    else if (S.stopped) state = "stopped";
    else if (!S.everConnected) state = "connecting";
    else state = "offline";
    app.setAttribute("data-conn", state);
    if (state === "online") {
      el.hidden = true;
    } else {
      el.hidden = false;
      el.setAttribute("data-state", state === "connecting" ? "connecting" : "offline");
      el.textContent =
        state === "connecting" ? "连接中…" : state === "stopped" ? "已断开" : "连接已断开，正在重连…";
    }
    updateSend();
  }

  // ---------------------------------------------------------------------------------------------
  // Chat list + queue
  // ---------------------------------------------------------------------------------------------
  function lastText(chat) {
    const m = lastMessage(chat);
    return m ? m.text : "";
  }

  function lastMessage(chat) {
    for (let i = chat.history.length - 1; i >= 0; i--) {
      if (chat.history[i].text || chat.history[i].image) return chat.history[i];
    }
    return null;
  }

  function countdownEl(chat) {
    if (!awaitingFirstReply(chat)) return null;
    const el = h("span", { class: "countdown", "data-deadline": chat.first_response_deadline });
    updateCountdown(el);
    return el;
  }

  function updateCountdown(el) {
    const left = Number(el.getAttribute("data-deadline")) - now();
    el.setAttribute("data-over", left <= 0 ? "true" : "false");
    el.setAttribute("data-urgent", left > 0 && left <= URGENT_S ? "true" : "false");
    el.textContent = "待首次回复 " + (left <= 0 ? "已超时" : formatDuration(Math.ceil(left)));
  }

  function chatItem(chat) {
    const last = lastMessage(chat);
    let preview = last ? last.text.replace(/\s+/g, " ") || (last.image ? "[图片]" : "") : "";
    if (last && last.from === "agent") preview = "我：" + preview;
    else if (last && last.from === "bot") preview = "小二：" + preview;
    const selected = chat.id === S.selected;
    return h(
      "li",
      {
        class: "item",
        "data-chat": chat.id,
        "data-unread": chat.unread > 0 ? "true" : "false",
        role: "option",
        "aria-selected": selected ? "true" : "false",
        tabindex: "0",
      },
      avatar(customerName(chat), chat.id),
      h("span", { class: "unread-dot", title: "有新消息", "data-count": chat.unread }, chat.unread > 99 ? "99+" : chat.unread > 0 ? String(chat.unread) : ""),
      h(
        "div",
        { class: "item-main" },
        h(
          "div",
          { class: "item-top" },
          h("span", { class: "item-name" }, customerName(chat)),
          channelBadge(chat.channel),
          h("span", { class: "item-time" }, last ? formatTime(last.ts) : "")
        ),
        h("div", { class: "item-preview", title: last ? last.text : "" }, preview || "（暂无消息）"),
        h(
          "div",
          { class: "item-sub" },
          countdownEl(chat),
          reasonBadge(chat, false),
          chat.group ? h("span", { class: "badge group" }, groupLabel(chat.group)) : null
        )
      )
    );
  }

  function renderChats() {
    const list = $("chats");
    const focused = document.activeElement && document.activeElement.getAttribute("data-chat");
    list.textContent = "";
    for (const id of S.order) list.appendChild(chatItem(S.chats.get(id)));
    $("chats-count").textContent = String(S.order.length);
    $("chats-empty").hidden = S.order.length > 0;
    list.hidden = S.order.length === 0;
    if (focused) {
      const el = list.querySelector('[data-chat="' + cssEscape(focused) + '"]');
      if (el) el.focus();
    }
    renderLoad();
    renderTitle();
  }

  function cssEscape(s) {
    return window.CSS && CSS.escape ? CSS.escape(s) : String(s).replace(/["\\]/g, "\\$&");
  }

  function queueItem(q) {
    const name = customerName(q);
    const since = num(q.waiting_since);
    const wait = h("span", { class: "q-wait", "data-since": since == null ? "" : since });
    updateWait(wait);
    const pos = num(q.position);
    return h(
      "li",
      { class: "item", "data-queued": str(q.id) },
      h("span", { class: "q-pos", title: "排队位置" }, pos == null ? "·" : String(pos)),
      h(
        "div",
        { class: "item-main" },
        h(
          "div",
          { class: "item-top" },
          h("span", { class: "item-name" }, name),
          channelBadge(q.channel),
          h("span", { class: "item-time" }, wait)
        ),
        h("div", { class: "item-preview", title: Array.isArray(q.messages) && q.messages.length ? q.messages.map(str).join("\n") : str(q.preview) },
          str(q.preview).replace(/\s+/g, " ") || "（暂无消息）"),
        h(
          "div",
          { class: "item-sub" },
          reasonBadge(q, false),
          q.group ? h("span", { class: "badge group" }, groupLabel(q.group)) : null,
          h("button", { type: "button", class: "pick-btn", "data-pick": str(q.id), title: "接入这位顾客" }, "接入")
        )
      )
    );
  }

  function pick(id) {
    if (!S.connected || !wsSend({ type: "pick", conversation: id })) {
      notice("未连接到服务器，请稍后再试", "error");
      return;
    }
    S.picking = id; // opened as soon as it is assigned to us
  }

  function updateWait(el) {
    const since = el.getAttribute("data-since");
    if (since === "" || since == null) {
      el.textContent = "";
      return;
    }
    const sec = now() - Number(since);
    el.textContent = "等待 " + formatDuration(sec);
    el.setAttribute("data-long", sec >= LONG_WAIT_S ? "true" : "false");
  }

  function renderQueue() {
    const list = $("queue");
    list.textContent = "";
    const items = S.queue.slice().sort((a, b) => (num(a.position) || 0) - (num(b.position) || 0));
    for (const q of items) if (q && typeof q === "object") list.appendChild(queueItem(q));
    $("queue-count").textContent = String(items.length);
    $("queue-empty").hidden = items.length > 0;
    list.hidden = items.length === 0;
  }

  function tick() {
    document.querySelectorAll(".countdown[data-deadline]").forEach(updateCountdown);
    document.querySelectorAll(".q-wait[data-since]").forEach(updateWait);
    renderTyping();
  }

  // ---------------------------------------------------------------------------------------------
  // Centre: header, history, composer
  // ---------------------------------------------------------------------------------------------
  function select(id) {
    if (id != null && !S.chats.has(id)) id = null;
    S.viewCase = null;
    closeSlash();
    const prev = S.selected;
    if (prev && prev !== id && S.chats.has(prev)) S.drafts.set(prev, $("reply").value);
    S.selected = id;
    hideCloseConfirm();
    closeTransfer();
    const chat = id ? S.chats.get(id) : null;
    if (chat) chat.unread = 0;
    if (prev !== id || !chat) {
      $("reply").value = chat ? S.drafts.get(id) || "" : "";
    }
    renderChats();
    renderCenter();
    renderCustomer();
    renderPhraseTexts();
    if (chat && prev !== id) focusReply();
  }

  function focusReply() {
    const ta = $("reply");
    try {
      ta.focus({ preventScroll: true });
    } catch (e) {
      ta.focus();
    }
  }

  function renderCenter() {
    const viewing = S.viewCase;
    $("center").setAttribute("data-readonly", viewing ? "true" : "false");
    $("case-bar").hidden = !viewing;
    if (viewing) {
      $("center").setAttribute("data-selected", "true");
      renderCaseView(viewing);
      return;
    }
    const chat = S.selected ? S.chats.get(S.selected) : null;
    $("center").setAttribute("data-selected", chat ? "true" : "false");
    renderTyping();
    if (!chat) {
      $("history").textContent = "";
      renderCoach();
      updateSend();
      return;
    }
    renderChatHead(chat);
    renderHistory(chat);
    renderCoach();
    updateSend();
  }

  function renderChatHead(chat) {
    const name = $("chat-name");
    name.textContent = "";
    append(name, [avatar(customerName(chat), chat.id), h("span", { class: "chat-who" }, customerName(chat))]);
    name.title = "当前会话：" + customerName(chat);
    const meta = $("chat-meta");
    meta.textContent = "";
    append(meta, [
      channelBadge(chat.channel),
      chat.group ? h("span", { class: "badge group" }, groupLabel(chat.group)) : null,
      reasonBadge(chat, true),
      chat.assigned_at != null ? h("span", null, "· 接入 " + formatTime(chat.assigned_at)) : null,
      countdownEl(chat),
    ]);
  }

  function messageEl(chat, m) {
    const who =
      m.from === "customer"
        ? customerName(chat)
        : m.from === "agent"
          ? agentLabel(m.agent)
          : m.from === "bot"
            ? "店小二（机器人）"
            : m.from === "note"
              ? "内部备注 · " + agentLabel(m.agent) + "（顾客看不到）"
              : null;
    const el = h(
      "div",
      { class: "msg", "data-from": m.from, "data-id": m.id },
      who ? h("div", { class: "msg-label" }, h("span", { class: "who" }, who), h("time", null, formatTime(m.ts))) : null,
      h(
        "div",
        { class: "bubble", title: m.from === "system" ? formatDate(m.ts) : null },
        m.image
          ? h("a", { class: "image", href: FILES + m.image, target: "_blank", rel: "noopener noreferrer", title: "查看原图" },
              h("img", { class: "thumb", src: FILES + m.image, alt: "图片", loading: "lazy" }))
          : null,
        m.text
      )
    );
    if (m.buttons && m.buttons.length) {
      el.appendChild(h("div", { class: "msg-buttons", title: "顾客可点击的按钮" }, m.buttons.map((b) => h("span", null, b))));
    }
    return el;
  }

  function renderHistory(chat) {
    const box = $("history");
    box.textContent = "";
    const frag = document.createDocumentFragment();
    let lastDay = null;
    for (const m of timeline(chat)) {
      const day = dayLabel(m.ts);
      if (day !== lastDay) {
        frag.appendChild(h("div", { class: "day-sep" }, day));
        lastDay = day;
      }
      frag.appendChild(messageEl(chat, m));
    }
    box.appendChild(frag);
    box.setAttribute("data-last-day", lastDay || "");
    scrollHistory(true);
  }

  function appendToHistory(chat, m) {
    const box = $("history");
    const near = box.scrollHeight - box.scrollTop - box.clientHeight < 140;
    const day = dayLabel(m.ts);
    if (box.getAttribute("data-last-day") !== day) {
      box.appendChild(h("div", { class: "day-sep" }, day));
      box.setAttribute("data-last-day", day);
    }
    box.appendChild(messageEl(chat, m));
    scrollHistory(near || m.from === "agent");
  }

  function scrollHistory(force) {
    const box = $("history");
    if (!force) return;
    box.scrollTop = box.scrollHeight;
    requestAnimationFrame(() => (box.scrollTop = box.scrollHeight));
  }

  function updateSend() {
    const ok = !!S.selected && $("reply").value.trim() !== "";
    $("send").disabled = !ok;
    $("send").title = S.connected ? "" : "未连接到服务器";
  }

  function sendReply(text, force) {
    const id = S.selected;
    if (!id) return false;
    text = str(text).replace(/^\s+|\s+$/g, "");
    if (!text) return false;
    if (S.mode === "note" && !force) return sendNote(id, text);
    if (!S.connected || !wsSend({ type: "reply", conversation: id, text: text, force: !!force })) {
      notice("未连接到服务器，回复没有发出（内容已保留）", "error");
      return false;
    }
    S.lastSent.set(id, text);
    S.typedAt = 0;
    S.coach.delete(id);
    renderCoach();
    // our reply comes back as a `message` frame; only the box is cleared here
    $("reply").value = "";
    S.drafts.delete(id);
    updateSend();
    return true;
  }

  // --- close (with inline confirm) ---
  let closeConfirmTimer = 0;

  /** Uploads a picture (the server checks its bytes and size), then sends it as a reply. */
  function sendImage(file) {
    const id = S.selected;
    if (!id || !S.connected) {
      notice("未连接到服务器，图片没有发出", "error");
      return;
    }
    fetch(BASE + "api/upload", { method: "POST", body: file, credentials: "same-origin" })
      .then((r) => r.json().then((body) => ({ ok: r.ok, status: r.status, body: body })))
      .then(
        (res) => {
          if (!res.ok) {
            const why = res.status === 413 ? "图片太大" : res.status === 415 ? "只能发送 PNG、JPEG、GIF 或 WebP 图片" : str(res.body && res.body.message);
            notice("图片没有发出：" + why, "error");
            return;
          }
          if (!wsSend({ type: "reply", conversation: id, text: "", image: str(res.body.file) })) notice("未连接到服务器，图片没有发出", "error");
        },
        () => notice("图片没有发出，请重试", "error")
      );
  }

  function sendNote(id, text) {
    if (!S.connected || !wsSend({ type: "note", conversation: id, text: text })) {
      notice("未连接到服务器，备注没有保存（内容已保留）", "error");
      return false;
    }
    $("reply").value = "";
    S.drafts.delete(id);
    updateSend();
    return true;
  }

  function setMode(mode) {
    S.mode = mode === "note" ? "note" : "reply";
    $("mode-reply").setAttribute("aria-selected", S.mode === "reply" ? "true" : "false");
    $("mode-note").setAttribute("aria-selected", S.mode === "note" ? "true" : "false");
    $("center").setAttribute("data-mode", S.mode);
    $("reply").placeholder = S.mode === "note" ? "内部备注：只有客服能看到，不会发给顾客" : "输入回复，Enter 发送，Shift+Enter 换行；输入 / 搜索快捷回复";
    $("send").textContent = S.mode === "note" ? "保存备注" : "发送";
    $("mode-hint").textContent = S.mode === "note" ? "顾客看不到内部备注" : "输入 / 搜索快捷回复";
    focusReply();
  }

  function signalTyping() {
    if (S.mode !== "reply" || !S.selected || !S.connected) return;
    if (Date.now() - S.typedAt < TYPING_SEND_MS) return;
    S.typedAt = Date.now();
    wsSend({ type: "typing", conversation: S.selected });
  }

  // ---------------------------------------------------------------------------------------------
  // "/" in the reply box: quick replies by search
  // ---------------------------------------------------------------------------------------------
  function allPhrases() {
    const out = [];
    for (const cat of S.phrases) {
      if (!cat || !Array.isArray(cat.phrases)) continue;
      for (const p of cat.phrases) if (p && p.text != null) out.push({ id: str(p.id), raw: str(p.text), category: str(cat.name) });
    }
    return out;
  }

  function updateSlash() {
    const ta = $("reply");
    const v = ta.value;
    if (S.mode !== "reply" || v.charAt(0) !== "/" || v.indexOf("\n") >= 0) {
      closeSlash();
      return;
    }
    const q = v.slice(1).trim().toLowerCase();
    const items = allPhrases()
      .map((p) => ({ id: p.id, raw: p.raw, category: p.category, text: fillPlaceholders(p.raw) }))
      .filter((p) => !q || p.text.toLowerCase().indexOf(q) >= 0 || p.category.toLowerCase().indexOf(q) >= 0 || p.id.toLowerCase().indexOf(q) >= 0)
      .slice(0, 8);
    S.slash = { open: true, items: items, index: 0 };
    renderSlash();
  }

  function renderSlash() {
    const box = $("slash");
    box.textContent = "";
    box.hidden = !S.slash.open;
    if (!S.slash.open) return;
    if (!S.slash.items.length) {
      box.appendChild(h("div", { class: "slash-none" }, "没有匹配的快捷回复"));
      return;
    }
    S.slash.items.forEach((p, i) => {
      box.appendChild(
        h(
          "div",
          { class: "slash-item", role: "option", "data-slash": p.id, "aria-selected": i === S.slash.index ? "true" : "false" },
          h("span", { class: "slash-cat" }, p.category),
          h("span", { class: "slash-text" }, p.text)
        )
      );
    });
  }

  function closeSlash() {
    if (!S.slash.open) return;
    S.slash = { open: false, items: [], index: 0 };
    renderSlash();
  }

  function chooseSlash(i) {
    const p = S.slash.items[i];
    if (!p) return;
    closeSlash();
    $("reply").value = "";
    insertPhrase(p.raw);
  }

  /** Keys while the "/" list is open; true when the key was used. */
  function slashKey(ev) {
    if (!S.slash.open) return false;
    const n = S.slash.items.length;
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      if (!n) return true;
      S.slash.index = (S.slash.index + (ev.key === "ArrowDown" ? 1 : n - 1)) % n;
      renderSlash();
    } else if ((ev.key === "Enter" && !ev.shiftKey) || ev.key === "Tab") {
      if (ev.isComposing || ev.keyCode === 229) return false;
      if (!n) return false;
      chooseSlash(S.slash.index);
    } else if (ev.key === "Escape") {
      closeSlash();
    } else {
      return false;
    }
    ev.preventDefault();
    ev.stopPropagation();
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // History of closed chats: search, read-only view, a buyer's past conversations
  // ---------------------------------------------------------------------------------------------
  function api(path, params) {
    const qs = Object.keys(params)
      .filter((k) => params[k] != null && params[k] !== "")
      .map((k) => encodeURIComponent(k) + "=" + encodeURIComponent(params[k]))
      .join("&");
    return fetch(BASE + "api/" + path + (qs ? "?" + qs : ""), { credentials: "same-origin" }).then((r) =>
      r.json().then(
        (body) => (r.ok ? body : Promise.reject(new Error(str(body && body.message) || "HTTP " + r.status))),
        () => Promise.reject(new Error("HTTP " + r.status))
      )
    );
  }

  function showTab(tab) {
    $("pane-chats").setAttribute("data-tab", tab);
    $("tab-chats").setAttribute("aria-selected", tab === "chats" ? "true" : "false");
    $("tab-history").setAttribute("aria-selected", tab === "history" ? "true" : "false");
    if (tab === "history" && !$("results").children.length) runSearch();
  }

  function runSearch() {
    const params = {
      q: $("search-q").value.trim(),
      buyer: $("search-buyer").value.trim(),
      from: $("search-from").value,
      to: $("search-to").value,
      scope: S.me.role === "supervisor" && $("search-all").checked ? "all" : "mine",
    };
    $("results-empty").textContent = "搜索中…";
    $("results-empty").hidden = false;
    $("results").textContent = "";
    api("search", params).then(
      (body) => renderResults(Array.isArray(body.results) ? body.results : []),
      (err) => {
        $("results-empty").textContent = "搜索失败：" + err.message;
      }
    );
  }

  function caseItem(r) {
    const who = customerName(r);
    return h(
      "li",
      { class: "item", "data-case": str(r.case), "data-conversation": str(r.conversation), tabindex: "0", role: "option" },
      avatar(who, r.conversation),
      h(
        "div",
        { class: "item-main" },
        h(
          "div",
          { class: "item-top" },
          h("span", { class: "item-name" }, who),
          channelBadge(r.channel),
          h("span", { class: "item-time" }, formatDate(num(r.closed_at)))
        ),
        h("div", { class: "item-preview", title: str(r.snippet) }, str(r.snippet) || "（无内容）"),
        r.agent ? h("div", { class: "item-sub" }, h("span", { class: "badge group" }, "客服 " + agentLabel(r.agent))) : null
      )
    );
  }

  function renderResults(results) {
    const list = $("results");
    list.textContent = "";
    results.forEach((r) => r && typeof r === "object" && list.appendChild(caseItem(r)));
    $("results-empty").textContent = "没有找到已结束的会话";
    $("results-empty").hidden = results.length > 0;
  }

  function openCase(conversation, caseId) {
    api("case", { conversation: conversation, case: caseId }).then(
      (body) => {
        const c = body.case || {};
        S.viewCase = {
          conversation: str(c.conversation),
          channel: str(c.channel),
          customer: c.customer && typeof c.customer === "object" ? c.customer : {},
          agent: str(c.agent),
          closed_at: num(c.closed_at),
          history: (Array.isArray(c.history) ? c.history : []).filter((m) => m && typeof m === "object").map(normMessage),
          notes: normNotes(c.notes),
        };
        closeSlash();
        renderCenter();
        renderCustomer();
      },
      (err) => notice("无法打开历史会话：" + err.message, "error")
    );
  }

  function renderCaseView(v) {
    const name = $("chat-name");
    name.textContent = "";
    append(name, [avatar(customerName(v), v.conversation), h("span", { class: "chat-who" }, customerName(v))]);
    const meta = $("chat-meta");
    meta.textContent = "";
    append(meta, [
      channelBadge(v.channel),
      h("span", { class: "badge closed" }, "已结束"),
      v.closed_at != null ? h("span", null, "结束于 " + formatDate(v.closed_at)) : null,
      v.agent ? h("span", null, "· 客服 " + agentLabel(v.agent)) : null,
    ]);
    $("case-title").textContent = "历史会话（只读）· " + customerName(v);
    renderHistory(v);
    $("typing").hidden = true;
  }

  function loadPastCases(id) {
    api("cases", { conversation: id }).then(
      (body) => {
        S.pastCases = { conversation: id, cases: Array.isArray(body.cases) ? body.cases : [] };
        renderCustomer();
      },
      (err) => notice("无法读取历史会话：" + err.message, "error")
    );
  }

  function showCloseConfirm() {
    if (!S.selected) return;
    const box = $("close-confirm-box");
    if (!box.hidden) {
      hideCloseConfirm();
      return;
    }
    closeTransfer();
    box.hidden = false;
    $("close").hidden = true; // the inline confirm takes the button's place
    $("close-confirm").focus();
    clearTimeout(closeConfirmTimer);
    closeConfirmTimer = setTimeout(hideCloseConfirm, 8000);
  }

  function hideCloseConfirm() {
    clearTimeout(closeConfirmTimer);
    $("close-confirm-box").hidden = true;
    $("close").hidden = false;
  }

  function confirmClose() {
    const id = S.selected;
    hideCloseConfirm();
    if (!id) return;
    if (!wsSend({ type: "close", conversation: id })) notice("未连接到服务器，请稍后再试", "error");
  }

  // --- transfer ---
  function openTransfer() {
    const chat = S.selected ? S.chats.get(S.selected) : null;
    if (!chat) return;
    hideCloseConfirm();
    const groups = $("transfer-groups");
    const agents = $("transfer-agents");
    groups.textContent = "";
    agents.textContent = "";
    for (const g of S.groups) {
      if (!g || !g.name) continue;
      groups.appendChild(
        h(
          "button",
          { type: "button", class: "pop-item", "data-transfer-group": str(g.name) },
          h("span", null, str(g.display_name) || str(g.name)),
          chat.group === g.name ? h("span", { class: "pop-sub" }, "当前") : null
        )
      );
    }
    if (!groups.children.length) groups.appendChild(h("div", { class: "pop-empty" }, "没有技能组"));
    const others = S.agents.filter((a) => a && a.username && a.username !== S.me.username);
    others.sort((a, b) => (b.online ? 1 : 0) - (a.online ? 1 : 0));
    for (const a of others) {
      agents.appendChild(
        h(
          "button",
          { type: "button", class: "pop-item", "data-transfer-agent": str(a.username), "data-online": a.online ? "true" : "false" },
          h("span", { class: "pres", "aria-hidden": "true" }),
          h("span", null, str(a.display_name) || str(a.username)),
          h("span", { class: "pop-sub" }, a.online ? "在线" : "离线")
        )
      );
    }
    if (!others.length) agents.appendChild(h("div", { class: "pop-empty" }, "没有其他客服"));
    $("transfer-dialog").hidden = false;
    $("transfer").setAttribute("aria-expanded", "true");
    const first = $("transfer-dialog").querySelector("button");
    if (first) first.focus();
  }

  function closeTransfer() {
    $("transfer-dialog").hidden = true;
    $("transfer").setAttribute("aria-expanded", "false");
  }

  function doTransfer(target) {
    const id = S.selected;
    closeTransfer();
    if (!id) return;
    const frame = { type: "transfer", conversation: id };
    if (target.group) frame.group = target.group;
    else frame.agent = target.agent;
    if (!wsSend(frame)) notice("未连接到服务器，请稍后再试", "error");
  }

  // --- coaching ---
  function renderCoach() {
    const box = $("coach");
    const c = S.selected ? S.coach.get(S.selected) : null;
    if (!c) {
      box.hidden = true;
      return;
    }
    const list = $("coach-list");
    list.textContent = "";
    for (const w of c.warnings) {
      const li = h("li", { "data-rule": w.rule }, h("div", { class: "coach-msg" }, w.message || "这条回复可能不符合服务规范"));
      if (w.suggestion) {
        const s = h("div", { class: "coach-sugg", title: "点击使用这条建议" }, w.suggestion);
        s.addEventListener("click", () => useSuggestion(w.suggestion));
        li.appendChild(s);
      }
      list.appendChild(li);
    }
    $("coach-use").hidden = !firstSuggestion(c);
    const hist = $("history");
    const near = hist.scrollHeight - hist.scrollTop - hist.clientHeight < 140;
    box.hidden = false;
    if (near) scrollHistory(true); // the box takes room from the history: keep the last message in view
  }

  function firstSuggestion(c) {
    for (const w of c.warnings) if (w.suggestion) return w.suggestion;
    return null;
  }

  function useSuggestion(text) {
    const id = S.selected;
    if (!id || !text) return;
    const ta = $("reply");
    ta.value = fillPlaceholders(text);
    S.drafts.set(id, ta.value);
    S.coach.delete(id);
    renderCoach();
    updateSend();
    focusReply();
    ta.setSelectionRange(ta.value.length, ta.value.length);
  }

  // ---------------------------------------------------------------------------------------------
  // Customer panel
  // ---------------------------------------------------------------------------------------------
  function renderCustomer() {
    const box = $("customer");
    box.textContent = "";
    const v = S.viewCase;
    if (v) {
      // a closed case is open: its buyer, not the selected live chat's
      box.appendChild(
        h("div", { class: "cust-head" }, avatar(customerName(v), v.conversation),
          h("div", { class: "cust-id" }, h("div", { class: "cust-name" }, customerName(v)), channelBadge(v.channel)))
      );
      const row = (label, value) => [h("dt", null, label), h("dd", null, value)];
      box.appendChild(
        h("dl", { class: "cust-rows" }, row("渠道", channelLabel(v.channel)), row("状态", "已结束（只读）"),
          row("结束于", v.closed_at != null ? formatDate(v.closed_at) : "—"), row("接待客服", v.agent ? agentLabel(v.agent) : "—"))
      );
      return;
    }
    const chat = S.selected ? S.chats.get(S.selected) : null;
    if (!chat) {
      box.appendChild(h("div", { class: "muted small-pad" }, "未选择会话"));
      return;
    }
    const c = chat.customer;
    const tags = Array.isArray(c.tags) ? c.tags.map(str).filter(Boolean) : [];
    const past = num(c.past_conversations);
    const row = (label, value) => [h("dt", null, label), h("dd", null, value)];
    box.appendChild(
      h(
        "div",
        { class: "cust-head" },
        avatar(customerName(chat), chat.id),
        h("div", { class: "cust-id" }, h("div", { class: "cust-name" }, customerName(chat)), channelBadge(chat.channel))
      )
    );
    box.appendChild(
      h(
        "dl",
        { class: "cust-rows" },
        row("渠道", channelLabel(chat.channel)),
        row("来自页面", pageLink(c.page)),
        row("语言", LOCALES[c.locale] || str(c.locale) || "—"),
        row("首次访问", formatDate(num(c.first_seen))),
        row("历史会话", [
          past == null ? "—" : past + " 次",
          past ? h("button", { type: "button", class: "link-btn small", id: "past-open" }, "查看") : null,
        ]),
        row("技能组", chat.group ? groupLabel(chat.group) : "—"),
        row("转人工", chat.reason_label || (chat.reason ? reasonLabel(chat.reason) : "—")),
        row("标签", tags.length ? h("div", { class: "tags" }, tags.map((t) => h("span", { class: "tag" }, t))) : "—")
      )
    );
    if (S.pastCases && S.pastCases.conversation === chat.id) {
      const list = h("ul", { class: "past-cases", id: "past-cases" });
      S.pastCases.cases.forEach((r) => r && typeof r === "object" && list.appendChild(caseItem(r)));
      if (!S.pastCases.cases.length) list.appendChild(h("li", { class: "muted" }, "没有可查看的历史会话"));
      box.appendChild(list);
    }
  }

  function pageLink(page) {
    if (!page || typeof page !== "object") return "—";
    const url = str(page.url);
    if (!/^https?:\/\//i.test(url)) return "—";
    return h("a", { href: url, target: "_blank", rel: "noopener noreferrer", class: "page-link", title: url }, str(page.title) || url);
  }

  // ---------------------------------------------------------------------------------------------
  // Quick phrases
  // ---------------------------------------------------------------------------------------------
  function fillPlaceholders(text) {
    const chat = S.selected ? S.chats.get(S.selected) : null;
    const name = (chat && str(chat.customer.name).trim()) || "亲";
    return str(text).replace(/\{name\}/g, name).replace(/\{shop\}/g, S.shop);
  }

  function renderPhrases() {
    const tabs = $("phrase-tabs");
    const box = $("phrases");
    tabs.textContent = "";
    box.textContent = "";
    S.phrases.forEach((cat, i) => {
      if (!cat || !Array.isArray(cat.phrases)) return;
      const key = str(cat.category) || "c" + i;
      const title = str(cat.name) || key;
      tabs.appendChild(
        h("button", { type: "button", class: "phrase-tab", role: "tab", "data-tab": key, "aria-selected": i === 0 ? "true" : "false" }, title)
      );
      const sec = h("section", { class: "ph-section", "data-category": key }, h("div", { class: "ph-title" }, title));
      for (const p of cat.phrases) {
        if (!p || p.text == null) continue;
        sec.appendChild(
          h("button", { type: "button", class: "phrase", "data-phrase": str(p.id), "data-raw": str(p.text) })
        );
      }
      box.appendChild(sec);
    });
    box.appendChild(h("div", { class: "ph-none", id: "phrases-none", hidden: true }, "没有匹配的快捷回复"));
    if (!S.phrases.length) box.appendChild(h("div", { class: "ph-none" }, "暂无快捷回复"));
    renderPhraseTexts();
  }

  /** (Re)writes every phrase's visible text for the selected customer and applies the search filter. */
  function renderPhraseTexts() {
    const q = $("phrase-search").value.trim().toLowerCase();
    let shown = 0;
    document.querySelectorAll("#phrases .phrase").forEach((el) => {
      const raw = el.getAttribute("data-raw");
      const text = fillPlaceholders(raw);
      const match = !q || text.toLowerCase().indexOf(q) >= 0 || raw.toLowerCase().indexOf(q) >= 0;
      el.hidden = !match;
      el.title = text;
      el.textContent = "";
      if (match) shown += 1;
      const at = q ? text.toLowerCase().indexOf(q) : -1;
      if (at >= 0) append(el, [text.slice(0, at), h("mark", null, text.slice(at, at + q.length)), text.slice(at + q.length)]);
      else el.textContent = text;
    });
    document.querySelectorAll("#phrases .ph-section").forEach((sec) => {
      const any = sec.querySelector(".phrase:not([hidden])");
      sec.hidden = !any;
      const tab = document.querySelector('#phrase-tabs [data-tab="' + cssEscape(sec.getAttribute("data-category")) + '"]');
      if (tab) tab.setAttribute("data-empty", any ? "false" : "true");
    });
    const none = $("phrases-none");
    if (none) none.hidden = shown > 0 || !S.phrases.length;
  }

  function insertPhrase(raw) {
    if (!S.selected) {
      notice("请先在左侧选择一个会话", "warn");
      return;
    }
    const text = fillPlaceholders(raw);
    const ta = $("reply");
    let start, end;
    if (ta.value.trim() === "") {
      ta.value = text;
      start = 0;
      end = text.length;
    } else {
      // insert at the caret (replacing a selection)
      const a = ta.selectionStart == null ? ta.value.length : ta.selectionStart;
      const b = ta.selectionEnd == null ? a : ta.selectionEnd;
      ta.value = ta.value.slice(0, a) + text + ta.value.slice(b);
      start = a;
      end = a + text.length;
    }
    S.drafts.set(S.selected, ta.value);
    updateSend();
    focusReply();
    // 【…】 marks the part the agent completes: select the first one, otherwise put the caret after the text
    const slot = /【[^】]*】/.exec(ta.value.slice(start, end));
    if (slot) ta.setSelectionRange(start + slot.index, start + slot.index + slot[0].length);
    else ta.setSelectionRange(end, end);
  }

  function activateTab(key) {
    const sec = document.querySelector('#phrases .ph-section[data-category="' + cssEscape(key) + '"]');
    if (!sec || sec.hidden) return;
    const box = $("phrases");
    box.scrollTop = sec.offsetTop - box.offsetTop - 2;
    markTab(key);
  }

  function markTab(key) {
    document.querySelectorAll("#phrase-tabs .phrase-tab").forEach((t) => {
      t.setAttribute("aria-selected", t.getAttribute("data-tab") === key ? "true" : "false");
    });
  }

  function onPhraseScroll() {
    const box = $("phrases");
    let current = null;
    document.querySelectorAll("#phrases .ph-section:not([hidden])").forEach((sec) => {
      if (sec.offsetTop - box.offsetTop <= box.scrollTop + 8) current = sec.getAttribute("data-category");
      else if (current == null) current = sec.getAttribute("data-category");
    });
    if (current) markTab(current);
  }

  // ---------------------------------------------------------------------------------------------
  // Frames from the server
  // ---------------------------------------------------------------------------------------------
  function handleFrame(f) {
    switch (f.type) {
      case "hello":
        onFollowupsHello(f);
        return onHello(f);
      case "followup":
      case "followup_taken":
        return onFollowup(f);
      case "assigned":
        return onAssigned(f);
      case "message":
        return onMessage(f);
      case "unassigned":
        return onUnassigned(f);
      case "queue":
        S.queue = Array.isArray(f.queue) ? f.queue : [];
        return renderQueue();
      case "coach":
        return onCoach(f);
      case "note":
        return onNote(f);
      case "typing":
        return onTyping(f);
      case "status":
        return onStatus(f);
      case "error":
        return onError(f);
      case "pong":
      default:
        return undefined;
    }
  }

  function onHello(f) {
    S.connected = true;
    S.everConnected = true;
    S.attempt = 0;
    try {
      sessionStorage.removeItem(KEY_401);
    } catch (e) {
      /* ignore */
    }
    const a = f.agent && typeof f.agent === "object" ? f.agent : {};
    S.me = {
      username: str(a.username),
      display_name: str(a.display_name),
      groups: Array.isArray(a.groups) ? a.groups.map(str) : [],
      capacity: num(a.capacity),
      role: a.role === "supervisor" ? "supervisor" : "agent",
    };
    $("search-all-wrap").hidden = S.me.role !== "supervisor";
    S.status = f.status === "away" ? "away" : "online";
    S.statusPending = null;
    S.shop = str(f.shop && f.shop.name);
    S.groups = Array.isArray(f.groups) ? f.groups.filter((g) => g && typeof g === "object") : [];
    S.agents = Array.isArray(f.agents) ? f.agents.filter((x) => x && typeof x === "object") : [];
    S.queue = Array.isArray(f.queue) ? f.queue : [];
    const phrasesChanged = JSON.stringify(f.phrases || []) !== JSON.stringify(S.phrases);
    S.phrases = Array.isArray(f.phrases) ? f.phrases : [];

    const old = S.chats;
    S.chats = new Map();
    S.order = [];
    for (const c of Array.isArray(f.chats) ? f.chats : []) {
      if (!c || typeof c !== "object" || c.id == null) continue;
      const chat = makeChat(c, old.get(str(c.id)));
      if (!S.chats.has(chat.id)) S.order.push(chat.id);
      S.chats.set(chat.id, chat);
    }
    sortOrder();
    for (const id of Array.from(S.drafts.keys())) if (!S.chats.has(id)) S.drafts.delete(id);
    for (const id of Array.from(S.coach.keys())) if (!S.chats.has(id)) S.coach.delete(id);

    let sel = S.selected;
    if (sel && !S.chats.has(sel)) {
      S.drafts.delete(sel);
      notice("此前打开的会话已不在你的列表中", "info");
      sel = null;
      S.selected = null;
      $("reply").value = "";
    }
    if (!sel && S.order.length) sel = S.order[0];

    renderConn();
    renderTop();
    renderQueue();
    if (phrasesChanged || !$("phrases").children.length) renderPhrases();
    if (sel !== S.selected) {
      select(sel);
    } else {
      // same chat (or none) as before the reconnect: keep the reply box as it is
      renderChats();
      renderCenter();
      renderCustomer();
      renderPhraseTexts();
    }
  }

  function onAssigned(f) {
    const c = f.conversation;
    if (!c || typeof c !== "object" || c.id == null) return;
    const id = str(c.id);
    const prev = S.chats.get(id);
    const chat = makeChat(c, prev);
    S.chats.set(id, chat);
    if (!prev) S.order.push(id);
    const picked = S.picking === id;
    if (picked) S.picking = null;
    if (!prev) {
      const flagged = chat.flag === "complaint" || chat.flag === "dispute";
      const why = flagged ? "（" + chat.reason_label + "）" : "";
      notice("新会话" + why + "：" + customerName(chat) + " · " + channelLabel(chat.channel), flagged ? "warn" : "ok");
      if (!picked) alertAgent("新会话：" + customerName(chat), lastText(chat) || channelLabel(chat.channel), id);
    }
    if (!S.selected || picked) {
      select(id);
    } else {
      renderChats();
      if (S.selected === id) {
        renderCenter();
        renderCustomer();
      }
    }
  }

  function onMessage(f) {
    const chat = S.chats.get(str(f.conversation));
    if (!chat) return;
    const m = normMessage(f);
    if (m.id) {
      if (chat.ids.has(m.id)) return;
      chat.ids.add(m.id);
    }
    chat.history.push(m);
    if (m.from === "customer" && S.typing.delete(chat.id)) renderTyping();
    if (m.from === "agent") {
      if (chat.first_reply_at == null) chat.first_reply_at = m.ts;
      const c = S.coach.get(chat.id);
      if (c && c.text.trim() === m.text.trim()) S.coach.delete(chat.id); // sent after all
    }
    const isSelected = S.selected === chat.id;
    if (!isSelected && m.from !== "agent") chat.unread += 1;
    if (isSelected && document.hidden && m.from === "customer") S.hiddenUnread += 1;
    if (m.from === "customer" && (!isSelected || document.hidden)) alertAgent(customerName(chat), m.text, chat.id);
    renderChats();
    if (isSelected) {
      appendToHistory(chat, m);
      if (m.from === "agent") {
        renderChatHead(chat);
        renderCoach();
      }
    }
  }

  function onUnassigned(f) {
    const id = str(f.conversation);
    const chat = S.chats.get(id);
    if (!chat) return;
    removeChat(id);
    const reason = str(f.reason);
    const d = UNASSIGNED[reason] || ["会话已移出你的列表（" + (reason || "未知原因") + "）", "info"];
    notice(d[0] + "（" + customerName(chat) + "）", d[1]);
  }

  function removeChat(id) {
    S.chats.delete(id);
    S.order = S.order.filter((x) => x !== id);
    S.drafts.delete(id);
    S.coach.delete(id);
    S.lastSent.delete(id);
    if (S.selected === id) {
      S.selected = null;
      select(null);
    } else {
      renderChats();
    }
  }

  function onCoach(f) {
    const id = str(f.conversation);
    if (!S.chats.has(id)) return;
    const warnings = (Array.isArray(f.warnings) ? f.warnings : [])
      .filter((w) => w && typeof w === "object")
      .map((w) => ({ rule: str(w.rule), message: str(w.message), suggestion: str(w.suggestion) }));
    const text = str(f.text);
    S.coach.set(id, { text: text, warnings: warnings.length ? warnings : [{ rule: "", message: "这条回复可能不符合服务规范", suggestion: "" }] });
    if (S.selected === id) {
      const ta = $("reply");
      if (ta.value.trim() === "") ta.value = text; // keep the reply in the box while coaching is shown
      S.drafts.set(id, ta.value);
      renderCoach();
      updateSend();
      focusReply();
    } else {
      if (!S.drafts.get(id)) S.drafts.set(id, text);
      const chat = S.chats.get(id);
      notice("给「" + customerName(chat) + "」的回复没有发出，请查看提示", "warn");
    }
  }

  function onNote(f) {
    const chat = S.chats.get(str(f.conversation));
    if (!chat || !f.note) return;
    const n = normNotes([f.note])[0];
    if (chat.notes.some((x) => x.id === n.id)) return;
    chat.notes.push(n);
    if (S.selected === chat.id && !S.viewCase) appendToHistory(chat, n);
  }

  function onTyping(f) {
    const id = str(f.conversation);
    if (!S.chats.has(id) || f.from !== "customer") return;
    S.typing.set(id, Date.now());
    renderTyping();
  }

  function renderTyping() {
    const at = S.selected && !S.viewCase ? S.typing.get(S.selected) : null;
    $("typing").hidden = !(at && Date.now() - at < TYPING_SHOW_MS);
  }

  function onStatus(f) {
    const st = f.status === "away" ? "away" : "online";
    const changed = st !== S.status || S.statusPending;
    S.status = st;
    S.statusPending = null;
    renderStatus();
    if (changed) notice(st === "away" ? "已切换为离开，不再接收新会话" : "已切换为在线，可以接收新会话", "info");
  }

  function onError(f) {
    const code = str(f.code);
    const id = f.conversation == null ? null : str(f.conversation);
    const msg = str(f.message) || "出错了（" + (code || "unknown") + "）";
    notice(msg, "error");
    if (S.statusPending && !id) {
      S.statusPending = null;
      renderStatus();
    }
    if (id && S.picking === id) S.picking = null;
    if (!id || !S.chats.has(id)) return;
    if (code === "not_assigned" || code === "unknown_conversation") {
      removeChat(id); // the server no longer has this chat for us
      return;
    }
    // a reply that failed: put its text back so nothing typed is lost
    const last = S.lastSent.get(id);
    if (last) {
      S.lastSent.delete(id);
      if (S.selected === id) {
        const ta = $("reply");
        if (ta.value.trim() === "") {
          ta.value = last;
          updateSend();
        }
      } else if (!S.drafts.get(id)) {
        S.drafts.set(id, last);
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Connection
  // ---------------------------------------------------------------------------------------------
  function connect() {
    clearTimeout(S.retryTimer);
    S.retryTimer = 0;
    if (S.ws || S.stopped) return;
    let ws;
    try {
      ws = new WebSocket(WS_URL);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    S.ws = ws;
    S.connected = false;
    renderConn();
    ws.onopen = () => {
      if (S.ws !== ws) return;
      S.lastRecv = Date.now();
      clearInterval(S.pingTimer);
      S.pingTimer = setInterval(() => {
        if (S.ws !== ws) return;
        if (Date.now() - S.lastRecv > DEAD_MS) {
          dropSocket(true);
          return;
        }
        wsSend({ type: "ping" });
      }, PING_MS);
    };
    ws.onmessage = (ev) => {
      if (S.ws !== ws) return;
      S.lastRecv = Date.now();
      let f;
      try {
        f = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      if (!f || typeof f !== "object") return;
      try {
        handleFrame(f);
      } catch (e) {
        if (window.console) console.error("[xiaoer desk] frame handling failed", f && f.type, e);
      }
    };
    ws.onerror = () => {
      /* a close event follows */
    };
    ws.onclose = (ev) => {
      if (S.ws !== ws) return;
      cleanupSocket();
      if (ev.code === CLOSE_UNAUTHORIZED) {
        unauthorized();
        return;
      }
      scheduleReconnect();
    };
  }

  function cleanupSocket() {
    const ws = S.ws;
    S.ws = null;
    S.connected = false;
    clearInterval(S.pingTimer);
    S.pingTimer = 0;
    if (ws) ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    renderConn();
    return ws;
  }

  function dropSocket(reconnect) {
    const ws = cleanupSocket();
    if (ws) {
      try {
        ws.close(1000);
      } catch (e) {
        /* ignore */
      }
    }
    if (reconnect) scheduleReconnect();
  }

  function scheduleReconnect() {
    if (S.stopped) return;
    clearTimeout(S.retryTimer);
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, S.attempt));
    S.attempt = Math.min(S.attempt + 1, 10);
    S.retryTimer = setTimeout(connect, delay);
    renderConn();
  }

  function wsSend(obj) {
    const ws = S.ws;
    if (!ws || ws.readyState !== 1) return false;
    try {
      ws.send(JSON.stringify(obj));
      return true;
    } catch (e) {
      return false;
    }
  }

  /** Close code 4401: the session is gone. Back to /desk/ (the login page) — but never in a tight loop. */
  function unauthorized() {
    S.stopped = true;
    renderConn();
    let last = 0;
    try {
      last = Number(sessionStorage.getItem(KEY_401)) || 0;
      sessionStorage.setItem(KEY_401, String(Date.now()));
    } catch (e) {
      /* ignore */
    }
    if (Date.now() - last < 10000) {
      notice("登录已失效，请重新登录", "error");
      $("conn").textContent = "登录已失效 · 点击重新登录";
      $("conn").style.cursor = "pointer";
      $("conn").onclick = logout;
      return;
    }
    location.href = BASE;
  }

  function logout() {
    S.stopped = true;
    clearTimeout(S.retryTimer);
    dropSocket(false);
    const go = () => {
      location.href = BASE;
    };
    fetch(BASE + "api/logout", { method: "POST", credentials: "same-origin" }).then(go, go);
  }

  function toggleStatus() {
    if (!S.connected) {
      notice("未连接到服务器，请稍后再试", "error");
      return;
    }
    const want = (S.statusPending || S.status) === "away" ? "online" : "away";
    if (wsSend({ type: "status", status: want })) {
      S.statusPending = want;
      renderStatus();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Wiring
  // ---------------------------------------------------------------------------------------------
  // ---------------------------------------------------------------------------------------------
  // Follow-ups (supervisors only): a low rating, a chat nobody answered. Listed until one
  // supervisor takes it; the server then tells every supervisor's desk to drop it.
  // ---------------------------------------------------------------------------------------------
  function onFollowupsHello(f) {
    S.followups = Array.isArray(f.followups) ? f.followups.filter((x) => x && typeof x === "object") : null;
    renderFollowups();
  }

  function onFollowup(f) {
    if (!Array.isArray(S.followups)) return;
    if (f.type === "followup" && f.followup && typeof f.followup === "object") {
      const item = f.followup;
      if (S.followups.some((x) => str(x.id) === str(item.id))) return;
      S.followups.push(item);
      notice("待跟进：" + str(item.label) + " · " + customerName(item), "warn");
    } else if (f.type === "followup_taken") {
      const was = S.followups.length;
      S.followups = S.followups.filter((x) => str(x.id) !== str(f.id));
      if (S.followups.length < was && str(f.by) !== (S.me && S.me.username)) notice(str(f.by_name) + " 已接手一项跟进", "info");
    }
    renderFollowups();
  }

  function followupItem(item) {
    const who = item.agent_name ? "客服 " + str(item.agent_name) : "";
    const score = num(item.score) != null ? "评分 " + num(item.score) : "";
    return h(
      "li",
      { class: "item followup", "data-followup": str(item.id), "data-kind": str(item.kind) },
      h(
        "div",
        { class: "item-main" },
        h(
          "div",
          { class: "item-top" },
          h("span", { class: "item-name" }, customerName(item)),
          channelBadge(item.channel),
          h("span", { class: "item-time" }, item.created_at ? formatTime(num(item.created_at)) : "")
        ),
        h("div", { class: "item-preview followup-label" }, str(item.label)),
        h("div", { class: "item-preview", title: str(item.preview) }, [score, who].filter(Boolean).join(" · ") || str(item.preview)),
        h(
          "div",
          { class: "item-sub" },
          h("button", { type: "button", class: "pick-btn", "data-take-followup": str(item.id), title: "由我来跟进" }, "我来跟进")
        )
      )
    );
  }

  function renderFollowups() {
    const pane = $("followups-pane");
    if (!pane) return;
    pane.hidden = !Array.isArray(S.followups);
    const items = Array.isArray(S.followups) ? S.followups : [];
    const list = $("followups");
    list.textContent = "";
    for (const item of items) list.appendChild(followupItem(item));
    $("followups-count").textContent = String(items.length);
    $("followups-empty").hidden = items.length > 0;
    list.hidden = items.length === 0;
  }

  function takeFollowup(id) {
    if (!S.connected || !wsSend({ type: "take_followup", id: id })) notice("未连接到服务器，请稍后再试", "error");
  }

  function init() {
    const ta = $("reply");

    $("chats").addEventListener("click", (ev) => {
      const item = ev.target.closest("[data-chat]");
      if (item) select(item.getAttribute("data-chat"));
    });
    $("chats").addEventListener("keydown", (ev) => {
      const item = ev.target.closest("[data-chat]");
      if (!item) return;
      if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault();
        select(item.getAttribute("data-chat"));
      } else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        ev.preventDefault();
        const next = ev.key === "ArrowDown" ? item.nextElementSibling : item.previousElementSibling;
        if (next) next.focus();
      }
    });

    ta.addEventListener("keydown", (ev) => {
      if (slashKey(ev)) return;
      if (ev.key !== "Enter" || ev.shiftKey) return;
      if (ev.isComposing || ev.keyCode === 229) return; // IME: Enter confirms the candidate
      ev.preventDefault();
      sendReply(ta.value, false);
    });
    ta.addEventListener("input", () => {
      if (S.selected) S.drafts.set(S.selected, ta.value);
      updateSend();
      updateSlash();
      if (ta.value.trim() && ta.value.charAt(0) !== "/") signalTyping();
    });
    $("slash").addEventListener("mousedown", (ev) => {
      const item = ev.target.closest("[data-slash]");
      if (!item) return;
      ev.preventDefault();
      chooseSlash(S.slash.items.findIndex((p) => p.id === item.getAttribute("data-slash")));
    });
    $("attach").addEventListener("click", () => $("image-file").click());
    $("image-file").addEventListener("change", () => {
      const f = $("image-file").files && $("image-file").files[0];
      $("image-file").value = "";
      if (f) sendImage(f);
    });
    $("mode-reply").addEventListener("click", () => setMode("reply"));
    $("mode-note").addEventListener("click", () => setMode("note"));
    $("tab-chats").addEventListener("click", () => showTab("chats"));
    $("tab-history").addEventListener("click", () => showTab("history"));
    $("search-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      runSearch();
    });
    const caseClick = (ev) => {
      const item = ev.target.closest("[data-case]");
      if (item) openCase(item.getAttribute("data-conversation"), item.getAttribute("data-case"));
    };
    $("results").addEventListener("click", caseClick);
    $("customer").addEventListener("click", (ev) => {
      if (ev.target.closest("#past-open") && S.selected) loadPastCases(S.selected);
      else caseClick(ev);
    });
    $("case-close").addEventListener("click", () => {
      S.viewCase = null;
      renderCenter();
      renderCustomer();
    });
    $("send").addEventListener("click", () => {
      sendReply(ta.value, false);
      focusReply();
    });

    $("coach-use").addEventListener("click", () => {
      const c = S.selected && S.coach.get(S.selected);
      if (c) useSuggestion(firstSuggestion(c));
    });
    $("coach-send-anyway").addEventListener("click", () => {
      const c = S.selected && S.coach.get(S.selected);
      if (c) sendReply(c.text, true);
    });
    $("coach-edit").addEventListener("click", () => {
      if (S.selected) S.coach.delete(S.selected);
      renderCoach();
      focusReply();
    });

    $("close").addEventListener("click", showCloseConfirm);
    $("close-confirm").addEventListener("click", confirmClose);
    $("close-cancel").addEventListener("click", () => {
      hideCloseConfirm();
      $("close").focus();
    });

    $("transfer").addEventListener("click", (ev) => {
      ev.stopPropagation();
      if ($("transfer-dialog").hidden) openTransfer();
      else closeTransfer();
    });
    $("transfer-dialog").addEventListener("click", (ev) => {
      const g = ev.target.closest("[data-transfer-group]");
      const a = ev.target.closest("[data-transfer-agent]");
      if (g) doTransfer({ group: g.getAttribute("data-transfer-group") });
      else if (a) doTransfer({ agent: a.getAttribute("data-transfer-agent") });
    });
    document.addEventListener("click", (ev) => {
      if (!$("transfer-dialog").hidden && !ev.target.closest(".transfer-wrap")) closeTransfer();
    });
    document.addEventListener("keydown", (ev) => {
      if (ev.key !== "Escape") return;
      if (!$("transfer-dialog").hidden) {
        closeTransfer();
        $("transfer").focus();
      } else if (!$("close-confirm-box").hidden) {
        hideCloseConfirm();
      }
    });

    $("status").addEventListener("click", toggleStatus);
    $("notify").addEventListener("click", toggleNotify);
    document.addEventListener("pointerdown", unlockAudio, { passive: true });
    document.addEventListener("keydown", unlockAudio, { passive: true });
    $("queue").addEventListener("click", (ev) => {
      const b = ev.target.closest("[data-pick]");
      if (b) pick(b.getAttribute("data-pick"));
    });
    $("followups").addEventListener("click", (ev) => {
      const b = ev.target.closest("[data-take-followup]");
      if (b) takeFollowup(b.getAttribute("data-take-followup"));
    });
    $("logout").addEventListener("click", logout);

    $("phrase-search").addEventListener("input", () => {
      renderPhraseTexts();
      $("phrases").scrollTop = 0;
      onPhraseScroll();
    });
    $("phrase-search").addEventListener("keydown", (ev) => {
      if (ev.key === "Escape" && ev.target.value) {
        ev.stopPropagation();
        ev.target.value = "";
        renderPhraseTexts();
      } else if (ev.key === "Enter") {
        // Enter in the search box uses the first visible phrase
        const first = document.querySelector("#phrases .phrase:not([hidden])");
        if (first) {
          ev.preventDefault();
          insertPhrase(first.getAttribute("data-raw"));
        }
      }
    });
    $("phrases").addEventListener("click", (ev) => {
      const p = ev.target.closest("[data-phrase]");
      if (p) insertPhrase(p.getAttribute("data-raw"));
    });
    $("phrases").addEventListener("scroll", onPhraseScroll, { passive: true });
    $("phrase-tabs").addEventListener("click", (ev) => {
      const t = ev.target.closest("[data-tab]");
      if (t) activateTab(t.getAttribute("data-tab"));
    });

    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && S.hiddenUnread) {
        S.hiddenUnread = 0;
        renderTitle();
      }
    });
    window.addEventListener("online", () => {
      if (!S.ws && !S.stopped) {
        S.attempt = 0;
        connect();
      }
    });

    setInterval(tick, 1000);
    renderNotify();
    renderConn();
    renderChats();
    renderQueue();
    renderCenter();
    connect();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
