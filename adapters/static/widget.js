/*!
 * Xiaoer (店小二) web chat widget.
 *
 * Embed with one tag:
 *   <script src="https://YOUR-BOT-HOST/widget.js" async></script>
 * Optional attributes: data-title, data-locale ("zh-CN" | "zh-TW" | "en"), data-name, data-open="true",
 * data-color ("#rrggbb" accent). Protocol and details: docs/widget.md.
 *
 * Plain ES2018, no build step, no dependencies. Everything lives in an open Shadow DOM root so the shop's
 * CSS cannot break it. Conversation text is always rendered with textContent / text nodes, never innerHTML.
 */
(function () {
  "use strict";

  if (typeof window === "undefined" || typeof document === "undefined") return;
  if (window.__xiaoerWidget) return; // loaded twice: keep the first instance
  window.__xiaoerWidget = true;

  // ---------------------------------------------------------------------------------------------
  // Configuration from the script tag (captured now: document.currentScript is null later)
  // ---------------------------------------------------------------------------------------------
  const SCRIPT = document.currentScript || findOwnScript();

  function findOwnScript() {
    const list = document.getElementsByTagName("script");
    for (let i = list.length - 1; i >= 0; i--) {
      if (/\/widget\.js(?:[?#]|$)/.test(list[i].src || "")) return list[i];
    }
    return null;
  }

  function attr(name) {
    const v = SCRIPT && SCRIPT.getAttribute(name);
    return v == null || v === "" ? null : v;
  }

  function normLocale(value) {
    const v = String(value || "").toLowerCase().replace(/_/g, "-");
    if (v.indexOf("zh") === 0) {
      return /^zh-(tw|hk|mo|hant)\b/.test(v) ? "zh-TW" : "zh-CN";
    }
    return "en";
  }

  const LOCALE = normLocale(attr("data-locale") || navigator.language || (navigator.languages || [])[0]);
  const NAME = attr("data-name");
  const OPEN_AT_LOAD = attr("data-open") === "true";
  const ACCENT = /^#[0-9a-fA-F]{6}$/.test(attr("data-color") || "") ? attr("data-color") : null;
  const WS_URL = computeWsUrl();
  const HTTP_BASE = WS_URL ? WS_URL.replace(/^ws/, "http").replace(/widget\/ws$/, "") : null; // ".../" of the bot

  function computeWsUrl() {
    let base;
    try {
      base = new URL(SCRIPT && SCRIPT.src ? SCRIPT.src : "/widget.js", location.href);
    } catch (e) {
      return null;
    }
    if (base.protocol !== "http:" && base.protocol !== "https:") return null; // e.g. file://
    // /widget.js -> /widget/ws ; /prefix/widget.js -> /prefix/widget/ws (reverse proxy mounted under a path)
    let path = "/widget/ws";
    if (/\/widget\.js$/.test(base.pathname)) path = base.pathname.replace(/widget\.js$/, "widget/ws");
    return (base.protocol === "https:" ? "wss:" : "ws:") + "//" + base.host + path;
  }

  // ---------------------------------------------------------------------------------------------
  // Chrome strings (conversation text always comes from the server)
  // ---------------------------------------------------------------------------------------------
  const STRINGS = {
    "zh-CN": {
      title: "在线客服",
      open: "打开在线客服",
      close: "关闭",
      placeholder: "输入消息，Enter 发送",
      send: "发送",
      connecting: "连接中…",
      reconnecting: "重新连接中…",
      online: "在线",
      offline: "已断开",
      empty: "发送一条消息，开始咨询",
      agent: "客服",
      sending: "发送中",
      failed: "发送失败",
      retry: "点击重试",
      refused: "此网站暂未开通在线客服连接",
      newMessages: "条新消息",
      powered: "店小二 提供技术支持",
      typing: "客服正在输入…",
      image: "发送图片",
      imageTooLarge: "图片太大了，请换一张小一点的",
      imageType: "只能发送 PNG、JPEG、GIF 或 WebP 图片",
      imageFailed: "图片没有发出去，请稍后再试",
    },
    "zh-TW": {
      title: "線上客服",
      open: "開啟線上客服",
      close: "關閉",
      placeholder: "輸入訊息，Enter 傳送",
      send: "傳送",
      connecting: "連線中…",
      reconnecting: "重新連線中…",
      online: "線上",
      offline: "已中斷",
      empty: "傳送一則訊息，開始諮詢",
      agent: "客服",
      sending: "傳送中",
      failed: "傳送失敗",
      retry: "點擊重試",
      refused: "此網站尚未開通線上客服連線",
      newMessages: "則新訊息",
      powered: "店小二 提供技術支援",
      typing: "客服正在輸入…",
      image: "傳送圖片",
      imageTooLarge: "圖片太大了，請換一張小一點的",
      imageType: "只能傳送 PNG、JPEG、GIF 或 WebP 圖片",
      imageFailed: "圖片沒有傳出去，請稍後再試",
    },
    en: {
      title: "Chat with us",
      open: "Open chat",
      close: "Close",
      placeholder: "Type a message… (Enter to send)",
      send: "Send",
      connecting: "Connecting…",
      reconnecting: "Reconnecting…",
      online: "Online",
      offline: "Disconnected",
      empty: "Send a message to start the conversation",
      agent: "Agent",
      sending: "Sending",
      failed: "Not sent",
      retry: "Tap to retry",
      refused: "This site is not allowed to connect to the chat service",
      newMessages: "new messages",
      powered: "Powered by Xiaoer",
      typing: "The agent is typing…",
      image: "Send a picture",
      imageTooLarge: "That picture is too large; please pick a smaller one",
      imageType: "Only PNG, JPEG, GIF or WebP pictures can be sent",
      imageFailed: "The picture was not sent; please try again",
    },
  };
  const T = STRINGS[LOCALE] || STRINGS.en;
  const TYPING_SEND_MS = 3000;
  const TYPING_SHOW_MS = 6000;
  const TITLE = attr("data-title") || T.title;

  // ---------------------------------------------------------------------------------------------
  // Constants
  // ---------------------------------------------------------------------------------------------
  const MAX_LEN = 2000;
  const COUNTER_FROM = 1800; // show the "n/2000" counter from this length on
  const PING_MS = 25000;
  const DEAD_MS = 70000; // nothing received for this long while open: consider the socket dead
  const CONNECT_TIMEOUT_MS = 15000;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 30000;
  const CLOSE_ORIGIN_REFUSED = 4403;
  const KEY_VISITOR = "xiaoer.visitor";
  const KEY_TOKEN = "xiaoer.token";
  // error codes that make the referenced message permanently / retryably failed
  const FAIL_PERMANENT = { too_long: 1, bad_frame: 1 };
  const FAIL_RETRYABLE = { rate_limited: 1, internal: 1 };
  // overload or a store outage: the message stays pending and is resent by itself after retry_after
  const RESEND = { busy: 1, unavailable: 1 };
  const RESEND_MAX_MS = 15000;

  // ---------------------------------------------------------------------------------------------
  // Storage (localStorage may throw: private mode, sandboxed iframes, disabled cookies)
  // ---------------------------------------------------------------------------------------------
  const memStore = {};
  const store = {
    get(key) {
      try {
        const v = window.localStorage.getItem(key);
        return v == null ? null : v;
      } catch (e) {
        return Object.prototype.hasOwnProperty.call(memStore, key) ? memStore[key] : null;
      }
    },
    set(key, value) {
      memStore[key] = value;
      try {
        window.localStorage.setItem(key, value);
      } catch (e) {
        /* memory only */
      }
    },
    remove(key) {
      delete memStore[key];
      try {
        window.localStorage.removeItem(key);
      } catch (e) {
        /* ignore */
      }
    },
  };

  function newClientId() {
    const c = window.crypto;
    try {
      if (c && typeof c.randomUUID === "function") return c.randomUUID();
    } catch (e) {
      /* insecure context */
    }
    let hex = "";
    if (c && typeof c.getRandomValues === "function") {
      const bytes = new Uint8Array(16);
      c.getRandomValues(bytes);
      for (let i = 0; i < bytes.length; i++) hex += (bytes[i] + 0x100).toString(16).slice(1);
      return hex;
    }
    for (let i = 0; i < 32; i++) hex += Math.floor(Math.random() * 16).toString(16);
    return hex;
  }

  // ---------------------------------------------------------------------------------------------
  // State
  // ---------------------------------------------------------------------------------------------
  const S = {
    ws: null,
    typedAt: 0, // ms when we last told the server the buyer types
    typingTimer: 0,
    ready: false, // hello answered with ready on the current socket
    everReady: false,
    stopped: false, // origin refused: no more reconnects
    unloading: false,
    attempt: 0,
    retryTimer: 0,
    pingTimer: 0,
    connectTimer: 0,
    lastRecv: 0,
    entries: [], // in display order: {key, id, from, text, ts, agent, state, local, notice, el}
    byKey: new Map(),
    chosen: new Map(), // entry key -> text of the reply button clicked under that message
    open: false,
    unread: 0,
    mounted: false,
    pendingOpen: false,
  };

  const keyOf = (from, id) => from + "\u0000" + id;

  // ---------------------------------------------------------------------------------------------
  // DOM
  // ---------------------------------------------------------------------------------------------
  const CSS = `
:host { all: initial; }
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
.root {
  --xe-accent: #f2673a;
  --xe-accent-2: #ff9a5a;
  --xe-text: #2b2420;
  --xe-muted: #8c8078;
  --xe-line: #efe6de;
  --xe-bg: #fbf8f5;
  font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", "PingFang SC", "PingFang TC", "Hiragino Sans GB",
    "Microsoft YaHei", "Microsoft JhengHei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC",
    "Helvetica Neue", Arial, sans-serif;
  font-size: 14px;
  line-height: 1.5;
  color: var(--xe-text);
  -webkit-font-smoothing: antialiased;
  -webkit-tap-highlight-color: transparent;
  text-align: left;
  letter-spacing: normal;
}
button { font: inherit; }
.launcher {
  position: fixed; right: 24px; bottom: 24px; z-index: 2147483000;
  width: 60px; height: 60px; padding: 0; border: 0; border-radius: 50%;
  display: flex; align-items: center; justify-content: center;
  color: #fff; cursor: pointer;
  background: linear-gradient(135deg, var(--xe-accent-2), var(--xe-accent));
  box-shadow: 0 10px 28px rgba(242, 103, 58, 0.38), 0 2px 6px rgba(0, 0, 0, 0.12);
  transition: transform 0.2s ease, box-shadow 0.2s ease;
}
.launcher:hover { transform: translateY(-2px) scale(1.04); box-shadow: 0 14px 32px rgba(242, 103, 58, 0.45), 0 3px 8px rgba(0, 0, 0, 0.12); }
.launcher:active { transform: scale(0.96); }
.launcher:focus-visible, .close:focus-visible, .send:focus-visible { outline: 3px solid rgba(242, 103, 58, 0.45); outline-offset: 3px; }
.launcher svg { width: 28px; height: 28px; transition: transform 0.2s ease; }
.launcher .ic-down { display: none; }
.root.open .launcher .ic-chat { display: none; }
.root.open .launcher .ic-down { display: block; }
.badge {
  position: absolute; top: -3px; right: -3px; min-width: 22px; height: 22px; padding: 0 6px;
  border-radius: 11px; border: 2px solid #fff; background: #e5392f; color: #fff;
  font-size: 12px; font-weight: 700; line-height: 18px; text-align: center;
}
.panel {
  position: fixed; right: 24px; bottom: 96px; z-index: 2147483001;
  width: 360px; height: 520px; max-width: calc(100vw - 32px); max-height: calc(100vh - 120px);
  display: none; flex-direction: column; overflow: hidden;
  background: #fff; border-radius: 20px;
  box-shadow: 0 20px 56px rgba(60, 25, 5, 0.22), 0 2px 10px rgba(0, 0, 0, 0.08);
  transform-origin: bottom right;
}
.root.open .panel { display: flex; animation: xe-pop 0.22s cubic-bezier(0.2, 0.9, 0.3, 1.15); }
@keyframes xe-pop { from { opacity: 0; transform: translateY(14px) scale(0.96); } to { opacity: 1; transform: none; } }
.head {
  flex: none; display: flex; align-items: center; gap: 12px; padding: 14px 12px 14px 16px;
  color: #fff; background: linear-gradient(135deg, var(--xe-accent-2), var(--xe-accent));
}
.avatar {
  flex: none; width: 40px; height: 40px; border-radius: 50%;
  display: flex; align-items: center; justify-content: center;
  background: rgba(255, 255, 255, 0.22); box-shadow: inset 0 0 0 1px rgba(255, 255, 255, 0.35);
}
.avatar svg { width: 22px; height: 22px; }
.head-text { min-width: 0; flex: 1; }
.title { font-size: 16px; font-weight: 600; line-height: 1.3; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.status { display: flex; align-items: center; gap: 6px; margin-top: 2px; font-size: 12px; opacity: 0.95; }
.dot { flex: none; width: 8px; height: 8px; border-radius: 50%; background: #ffd54f; box-shadow: 0 0 0 2px rgba(255, 255, 255, 0.35); }
.status[data-state="connecting"] .dot { animation: xe-pulse 1.2s ease-in-out infinite; }
.status[data-state="online"] .dot { background: #4ade80; }
.status[data-state="offline"] .dot { background: #ffd54f; }
.status.stopped .dot { background: #d6d0cb; animation: none; }
@keyframes xe-pulse { 50% { opacity: 0.35; } }
.close {
  flex: none; width: 36px; height: 36px; padding: 0; border: 0; border-radius: 50%;
  display: flex; align-items: center; justify-content: center;
  color: #fff; background: transparent; cursor: pointer; transition: background 0.15s;
}
.close:hover { background: rgba(255, 255, 255, 0.2); }
.close svg { width: 20px; height: 20px; }
.body { position: relative; flex: 1; min-height: 0; background: var(--xe-bg); }
.messages {
  height: 100%; overflow-y: auto; overscroll-behavior: contain;
  padding: 16px 14px 10px; display: flex; flex-direction: column; gap: 10px;
}
.messages::-webkit-scrollbar { width: 6px; }
.messages::-webkit-scrollbar-thumb { background: rgba(0, 0, 0, 0.12); border-radius: 3px; }
.empty {
  position: absolute; inset: 0; padding: 24px; pointer-events: none;
  display: flex; flex-direction: column; align-items: center; justify-content: center; gap: 12px;
  color: var(--xe-muted); font-size: 13px; text-align: center;
}
.empty svg { width: 44px; height: 44px; color: #f5c4a8; }
.msg, .notice { display: flex; flex-direction: column; max-width: 82%; }
.anim { animation: xe-in 0.18s ease-out; }
@keyframes xe-in { from { opacity: 0; transform: translateY(4px); } to { opacity: 1; transform: none; } }
.msg.from-visitor { align-self: flex-end; align-items: flex-end; }
.msg.from-bot, .msg.from-agent { align-self: flex-start; align-items: flex-start; }
.msg.from-system, .notice { align-self: center; align-items: center; max-width: 92%; }
.label { margin: 0 6px 3px; font-size: 11px; font-weight: 600; color: var(--xe-accent); }
.bubble {
  padding: 9px 13px; border-radius: 18px; font-size: 14px; line-height: 1.55;
  white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-word;
}
.bubble a { color: inherit; text-decoration: underline; text-underline-offset: 2px; }
.from-visitor .bubble {
  color: #fff; border-bottom-right-radius: 6px;
  background: linear-gradient(135deg, var(--xe-accent-2), var(--xe-accent));
  box-shadow: 0 2px 6px rgba(242, 103, 58, 0.22);
}
.from-bot .bubble {
  background: #fff; border: 1px solid var(--xe-line); border-bottom-left-radius: 6px;
  box-shadow: 0 1px 3px rgba(60, 30, 10, 0.05);
}
.from-agent .bubble { background: #fff3e8; border: 1px solid #fbd9c0; border-bottom-left-radius: 6px; }
.from-system .bubble, .notice .bubble {
  padding: 4px 12px; border-radius: 12px; font-size: 12px; line-height: 1.5;
  color: var(--xe-muted); background: rgba(60, 30, 10, 0.055); text-align: center;
}
.notice .bubble { color: #a0522d; background: rgba(242, 103, 58, 0.09); }
.meta { display: flex; align-items: center; gap: 6px; margin: 3px 6px 0; font-size: 11px; color: #ab9f96; }
.from-system .meta { display: none; }
.buttons { display: flex; flex-wrap: wrap; gap: 6px; margin: 6px 2px 0; }
.pill {
  padding: 5px 12px; border-radius: 999px; border: 1px solid #fbd0b5; background: #fff;
  color: var(--xe-accent); font-size: 13px; line-height: 1.4; cursor: pointer; text-align: left;
  transition: background 0.15s, border-color 0.15s;
}
.pill:hover:not(:disabled) { background: #fff3e8; border-color: var(--xe-accent); }
.pill:focus-visible { outline: 3px solid rgba(242, 103, 58, 0.35); outline-offset: 1px; }
.pill:disabled { cursor: default; color: #b9ada4; background: #faf7f4; border-color: var(--xe-line); }
.pill.chosen:disabled { color: #fff; background: var(--xe-accent); border-color: var(--xe-accent); opacity: 0.75; }
.tick { display: inline-flex; }
.tick svg { width: 14px; height: 14px; }
.from-visitor[data-state="pending"] .bubble { opacity: 0.78; }
.from-visitor[data-state="pending"] .tick { opacity: 0; animation: xe-show 0s linear 0.8s forwards; }
@keyframes xe-show { to { opacity: 1; } }
.from-visitor[data-state="sent"] .tick { color: #e98b5f; }
.from-visitor[data-state="failed"] .bubble { color: var(--xe-text); background: #fff; border: 1px solid #f3b1a8; box-shadow: none; }
.fail { color: #d93025; font-weight: 600; }
.fail.retryable { cursor: pointer; text-decoration: underline; text-underline-offset: 2px; }
.composer {
  position: relative; flex: none; display: flex; align-items: flex-end; gap: 8px;
  padding: 10px 12px 8px; background: #fff; border-top: 1px solid var(--xe-line);
}
textarea {
  flex: 1; min-width: 0; height: 40px; min-height: 40px; max-height: 120px; margin: 0;
  padding: 9px 13px; resize: none; overflow-y: auto;
  font: inherit; font-size: 14px; line-height: 20px; color: var(--xe-text);
  background: var(--xe-bg); border: 1px solid var(--xe-line); border-radius: 20px; outline: none;
  transition: border-color 0.15s, box-shadow 0.15s, background 0.15s;
}
textarea::placeholder { color: #b3a79e; }
textarea:focus { background: #fff; border-color: var(--xe-accent); box-shadow: 0 0 0 3px rgba(242, 103, 58, 0.15); }
.send {
  flex: none; width: 40px; height: 40px; padding: 0; border: 0; border-radius: 50%;
  display: flex; align-items: center; justify-content: center; color: #fff; cursor: pointer;
  background: linear-gradient(135deg, var(--xe-accent-2), var(--xe-accent));
  box-shadow: 0 3px 10px rgba(242, 103, 58, 0.3); transition: transform 0.15s, opacity 0.15s;
}
.send:hover:not(:disabled) { transform: scale(1.06); }
.send:disabled { background: #ebe3dc; box-shadow: none; cursor: default; }
.attach {
  flex: none; width: 36px; height: 40px; padding: 0; border: 0; background: transparent; color: #a3968c; cursor: pointer;
  display: flex; align-items: center; justify-content: center;
}
.attach:hover { color: var(--xe-accent); }
.attach svg { width: 22px; height: 22px; }
.bubble .thumb { display: block; max-width: 200px; max-height: 200px; border-radius: 10px; cursor: zoom-in; }
.bubble a.image { display: block; line-height: 0; }
.send svg { width: 18px; height: 18px; margin-left: 2px; }
.counter {
  position: absolute; right: 62px; top: -22px; padding: 1px 8px; border-radius: 10px;
  font-size: 11px; color: var(--xe-muted); background: rgba(255, 255, 255, 0.95);
  box-shadow: 0 1px 4px rgba(0, 0, 0, 0.08);
}
.counter.full { color: #d93025; }
.typing { flex: none; padding: 2px 16px 4px; font-size: 12px; color: #9a8e85; font-style: italic; background: #fff; }
.foot { flex: none; padding: 0 0 8px; text-align: center; font-size: 11px; color: #bcb1a8; background: #fff; }
@media (max-width: 479px) {
  .panel {
    top: 0; right: 0; bottom: 0; left: 0; width: 100%; height: 100%;
    max-width: none; max-height: none; border-radius: 0;
  }
  .root.open .launcher { display: none; }
  .launcher { right: 16px; bottom: 16px; }
  .head { padding-top: max(14px, env(safe-area-inset-top)); }
  .foot { padding-bottom: max(8px, env(safe-area-inset-bottom)); }
  textarea { font-size: 16px; }
}
@media (prefers-reduced-motion: reduce) {
  *, *::before, *::after { animation: none !important; transition: none !important; }
  .from-visitor[data-state="pending"] .tick { opacity: 1; }
}
`;

  // Static, constant markup only (no user or server text ever goes through innerHTML).
  const ICON_CHAT =
    '<svg class="ic-chat" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><path d="M21 11.5a8.4 8.4 0 0 1-9 8.4 9.4 9.4 0 0 1-3.9-.8L3 20.5l1.4-4.2A8 8 0 0 1 3 11.5 8.6 8.6 0 0 1 12 3a8.6 8.6 0 0 1 9 8.5z"/><path d="M8.5 10.5h.01M12 10.5h.01M15.5 10.5h.01" stroke-width="2.6"/></svg>';
  const ICON_DOWN =
    '<svg class="ic-down" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><path d="M6 9l6 6 6-6"/></svg>';
  const ICON_CLOSE =
    '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" aria-hidden="true"><path d="M6 6l12 12M18 6L6 18"/></svg>';
  const ICON_IMAGE =
    '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><rect x="3" y="4" width="18" height="16" rx="3"/><circle cx="9" cy="10" r="2"/><path d="M21 17l-5-5-8 8"/></svg>';
  const ICON_SEND =
    '<svg viewBox="0 0 24 24" fill="currentColor" aria-hidden="true"><path d="M3.4 20.4l17.45-7.48a1 1 0 0 0 0-1.84L3.4 3.6a.99.99 0 0 0-1.39.91L2 9.12c0 .5.37.93.87.99L17 12 2.87 13.88c-.5.07-.87.5-.87 1l.01 4.61c0 .71.73 1.2 1.39.91z"/></svg>';
  const ICON_AVATAR =
    '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><path d="M4 14v-2a8 8 0 0 1 16 0v2"/><rect x="2.5" y="13" width="4" height="6" rx="1.6"/><rect x="17.5" y="13" width="4" height="6" rx="1.6"/><path d="M19.5 19a4 4 0 0 1-4 3h-2"/></svg>';
  const ICON_TICK =
    '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><path d="M5 12.5l4.5 4.5L19 7.5"/></svg>';
  const ICON_CLOCK =
    '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" aria-hidden="true"><circle cx="12" cy="12" r="8.5"/><path d="M12 7.5V12l3 2"/></svg>';
  const ICON_BUBBLES =
    '<svg viewBox="0 0 48 48" fill="currentColor" aria-hidden="true"><path d="M8 6h22a5 5 0 0 1 5 5v12a5 5 0 0 1-5 5H17l-7 6v-6H8a5 5 0 0 1-5-5V11a5 5 0 0 1 5-5z" opacity=".9"/><path d="M38 16h2a5 5 0 0 1 5 5v11a5 5 0 0 1-5 5h-1v6l-7-6H22a5 5 0 0 1-5-5v-1h13a8 8 0 0 0 8-8z" opacity=".55"/></svg>';

  const TEMPLATE = `
<div class="root" part="root">
  <button type="button" class="launcher" data-xiaoer="launcher" aria-expanded="false">
    ${ICON_CHAT}${ICON_DOWN}
    <span class="badge" data-xiaoer="unread" hidden></span>
  </button>
  <section class="panel" data-xiaoer="panel" role="dialog" aria-modal="false" data-open="false">
    <header class="head">
      <div class="avatar">${ICON_AVATAR}</div>
      <div class="head-text">
        <div class="title" data-xiaoer="title"></div>
        <div class="status" data-xiaoer="status" data-state="connecting" role="status">
          <span class="dot"></span><span class="status-text"></span>
        </div>
      </div>
      <button type="button" class="close" data-xiaoer="close">${ICON_CLOSE}</button>
    </header>
    <div class="body">
      <div class="empty" data-xiaoer="empty">${ICON_BUBBLES}<span class="empty-text"></span></div>
      <div class="messages" data-xiaoer="messages" role="log" aria-live="polite" aria-relevant="additions"></div>
    </div>
    <div class="typing" data-xiaoer="typing" hidden></div>
    <div class="composer">
      <span class="counter" data-xiaoer="counter" hidden></span>
      <textarea data-xiaoer="input" rows="1" maxlength="${MAX_LEN}" autocomplete="off" enterkeyhint="send"></textarea>
      <button type="button" class="attach" data-xiaoer="attach">${ICON_IMAGE}</button>
      <input type="file" data-xiaoer="file" accept="image/png,image/jpeg,image/gif,image/webp" hidden>
      <button type="button" class="send" data-xiaoer="send" disabled>${ICON_SEND}</button>
    </div>
    <div class="foot"></div>
  </section>
</div>`;

  let host, root, el; // el: named element references

  function mount() {
    if (S.mounted) return;
    S.mounted = true;
    host = document.createElement("xiaoer-widget");
    host.setAttribute("data-xiaoer", "host");
    // The host itself must not be styled by the shop page.
    host.style.cssText = "all: initial !important; display: block !important; position: static !important;";
    root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host; // very old browsers: no isolation
    const style = document.createElement("style");
    style.textContent = CSS;
    root.appendChild(style);
    const wrap = document.createElement("div");
    wrap.innerHTML = TEMPLATE; // constant markup
    const rootDiv = wrap.firstElementChild;
    root.appendChild(rootDiv);
    const q = (sel) => rootDiv.querySelector(sel);
    el = {
      root: rootDiv,
      launcher: q('[data-xiaoer="launcher"]'),
      unread: q('[data-xiaoer="unread"]'),
      panel: q('[data-xiaoer="panel"]'),
      title: q('[data-xiaoer="title"]'),
      status: q('[data-xiaoer="status"]'),
      statusText: q(".status-text"),
      close: q('[data-xiaoer="close"]'),
      empty: q('[data-xiaoer="empty"]'),
      emptyText: q(".empty-text"),
      messages: q('[data-xiaoer="messages"]'),
      counter: q('[data-xiaoer="counter"]'),
      input: q('[data-xiaoer="input"]'),
      send: q('[data-xiaoer="send"]'),
      foot: q(".foot"),
      typing: q('[data-xiaoer="typing"]'),
      attach: q('[data-xiaoer="attach"]'),
      file: q('[data-xiaoer="file"]'),
    };
    el.attach.setAttribute("aria-label", T.image);
    el.attach.title = T.image;
    el.attach.addEventListener("click", () => el.file.click());
    el.file.addEventListener("change", () => {
      const f = el.file.files && el.file.files[0];
      el.file.value = "";
      if (f) sendImage(f);
    });
    el.typing.textContent = T.typing;
    rootDiv.setAttribute("lang", LOCALE);
    if (ACCENT) {
      rootDiv.style.setProperty("--xe-accent", ACCENT);
      rootDiv.style.setProperty("--xe-accent-2", ACCENT);
    }
    el.title.textContent = TITLE;
    el.panel.setAttribute("aria-label", TITLE);
    el.launcher.setAttribute("aria-label", T.open);
    el.launcher.title = T.open;
    el.close.setAttribute("aria-label", T.close);
    el.close.title = T.close;
    el.send.setAttribute("aria-label", T.send);
    el.send.title = T.send;
    el.input.placeholder = T.placeholder;
    el.input.setAttribute("aria-label", T.placeholder);
    el.emptyText.textContent = T.empty;
    el.foot.textContent = T.powered;

    el.launcher.addEventListener("click", () => (S.open ? closePanel() : openPanel(true)));
    el.close.addEventListener("click", () => closePanel());
    el.panel.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") {
        closePanel();
        el.launcher.focus();
      }
    });
    el.input.addEventListener("keydown", onInputKey);
    el.input.addEventListener("input", onInputChange);
    el.send.addEventListener("click", () => {
      sendFromInput();
      el.input.focus();
    });

    document.body.appendChild(host);
    renderAll();
    renderStatus();
    if (S.pendingOpen || OPEN_AT_LOAD) openPanel(S.pendingOpen === "focus");
  }

  // ---------------------------------------------------------------------------------------------
  // Panel
  // ---------------------------------------------------------------------------------------------
  function openPanel(focus) {
    if (!S.mounted) {
      S.pendingOpen = focus ? "focus" : true;
      return;
    }
    S.open = true;
    el.root.classList.add("open");
    el.panel.setAttribute("data-open", "true");
    el.launcher.setAttribute("aria-expanded", "true");
    el.launcher.setAttribute("aria-label", T.close);
    el.launcher.title = T.close;
    S.unread = 0;
    renderUnread();
    scrollToBottom(true);
    if (focus) {
      try {
        el.input.focus({ preventScroll: true });
      } catch (e) {
        el.input.focus();
      }
    }
  }

  function closePanel() {
    S.pendingOpen = false;
    if (!S.mounted) return;
    S.open = false;
    el.root.classList.remove("open");
    el.panel.setAttribute("data-open", "false");
    el.launcher.setAttribute("aria-expanded", "false");
    el.launcher.setAttribute("aria-label", T.open);
    el.launcher.title = T.open;
  }

  function renderUnread() {
    if (!S.mounted) return;
    if (S.unread > 0 && !S.open) {
      el.unread.textContent = S.unread > 99 ? "99+" : String(S.unread);
      el.unread.setAttribute("aria-label", S.unread + " " + T.newMessages);
      el.unread.hidden = false;
    } else {
      el.unread.hidden = true;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Input
  // ---------------------------------------------------------------------------------------------
  function onInputKey(ev) {
    if (ev.key !== "Enter" || ev.shiftKey) return;
    // IME composition (pinyin, zhuyin...): Enter confirms the candidate, it must not send
    if (ev.isComposing || ev.keyCode === 229) return;
    ev.preventDefault();
    sendFromInput();
  }

  // While a human serves the chat, the agent sees "typing…" (the server passes it on only then).
  function signalTyping() {
    if (!S.ready || el.input.value.trim() === "" || Date.now() - S.typedAt < TYPING_SEND_MS) return;
    S.typedAt = Date.now();
    wsSend({ type: "typing" });
  }

  function showAgentTyping() {
    if (!S.mounted) return;
    el.typing.hidden = false;
    clearTimeout(S.typingTimer);
    S.typingTimer = setTimeout(() => (el.typing.hidden = true), TYPING_SHOW_MS);
  }

  function onInputChange() {
    signalTyping();
    const len = el.input.value.length;
    el.send.disabled = el.input.value.trim() === "";
    if (len >= COUNTER_FROM) {
      el.counter.textContent = len + "/" + MAX_LEN;
      el.counter.classList.toggle("full", len >= MAX_LEN);
      el.counter.hidden = false;
    } else {
      el.counter.hidden = true;
    }
    autoGrow();
  }

  function autoGrow() {
    const ta = el.input;
    ta.style.height = "auto";
    ta.style.height = Math.min(ta.scrollHeight + 2, 120) + "px";
  }

  function sendFromInput() {
    const text = el.input.value;
    if (text.trim() === "") return;
    el.input.value = "";
    S.typedAt = 0; // the message ends this bout of typing: the next keystroke signals again
    onInputChange();
    sendText(text);
  }

  // ---------------------------------------------------------------------------------------------
  // Messages
  // ---------------------------------------------------------------------------------------------
  function sendText(raw) {
    const text = String(raw == null ? "" : raw).replace(/^\s+|\s+$/g, "");
    if (!text) return null;
    const id = newClientId();
    const entry = {
      key: keyOf("visitor", id),
      id: id,
      from: "visitor",
      text: text,
      ts: Date.now() / 1000,
      state: "pending",
      local: true,
    };
    addEntry(entry);
    scrollToBottom(true);
    if (S.ready) transmit(entry);
    return id;
  }

  function transmit(entry) {
    const frame = { type: "message", id: entry.id, text: entry.text, page: currentPage() };
    if (entry.image) frame.image = entry.image;
    wsSend(frame);
  }

  /** Uploads a picture (checked again by the server: type by its bytes, size), then sends it as a message. */
  function sendImage(file) {
    if (!HTTP_BASE || !S.ready) {
      addNotice(T.imageFailed);
      return;
    }
    fetch(HTTP_BASE + "widget/upload", {
      method: "POST",
      body: file,
      headers: { "X-Xiaoer-Visitor": store.get(KEY_VISITOR) || "", "X-Xiaoer-Token": store.get(KEY_TOKEN) || "" },
    }).then(
      (r) => {
        if (r.status === 413) return addNotice(T.imageTooLarge);
        if (r.status === 415) return addNotice(T.imageType);
        if (!r.ok) return addNotice(T.imageFailed);
        return r.json().then((body) => {
          const id = newClientId();
          const entry = { key: keyOf("visitor", id), id: id, from: "visitor", text: "", image: String(body.file), ts: Date.now() / 1000, state: "pending", local: true };
          addEntry(entry);
          scrollToBottom(true);
          if (S.ready) transmit(entry);
        });
      },
      () => addNotice(T.imageFailed)
    );
  }

  function imageUrl(id) {
    return /^[0-9a-f]{32}$/.test(String(id || "")) && HTTP_BASE ? HTTP_BASE + "files/" + id : null;
  }

  // The page the buyer is on (the desk shows it to the agent); only http(s) pages are sent.
  function currentPage() {
    if (!/^https?:$/.test(location.protocol)) return null;
    return { url: String(location.href).slice(0, 512), title: String(document.title || "").slice(0, 200) };
  }

  function fromServer(m) {
    const from = ["bot", "agent", "system", "visitor"].indexOf(m.from) >= 0 ? m.from : "system";
    const id = m.id == null || m.id === "" ? null : String(m.id);
    const ts = typeof m.ts === "number" && isFinite(m.ts) ? m.ts : Date.now() / 1000;
    return {
      key: id ? keyOf(from, id) : keyOf(from, "local-" + newClientId()),
      id: id,
      from: from,
      text: m.text == null ? "" : String(m.text),
      ts: ts,
      agent: m.agent == null || m.agent === "" ? null : String(m.agent),
      image: m.image == null ? "" : String(m.image),
      state: from === "visitor" ? "sent" : null,
      local: false,
      buttons: cleanButtons(m.buttons),
    };
  }

  function cleanButtons(list) {
    if (!Array.isArray(list)) return null;
    const out = [];
    for (const b of list) {
      if (!b || typeof b !== "object") continue;
      const label = b.label == null ? "" : String(b.label);
      const text = b.text == null ? label : String(b.text);
      if (text.trim()) out.push({ label: label || text, text: text });
    }
    return out.length ? out : null;
  }

  // Returns true when a new entry was appended.
  function acceptServerMessage(m) {
    const entry = fromServer(m);
    const existing = S.byKey.get(entry.key);
    if (existing) {
      // the same message again (history overlap, or our own message echoed to every tab): no duplicate
      if (existing.from === "visitor" && existing.state !== "sent") setEntryState(existing, "sent");
      return false;
    }
    addEntry(entry);
    return true;
  }

  function addEntry(entry) {
    if (entry.key) {
      if (S.byKey.has(entry.key)) return;
      S.byKey.set(entry.key, entry);
    }
    S.entries.push(entry);
    if (S.mounted) {
      if (!entry.el) entry.el = buildEntry(entry);
      entry.el.classList.add("anim");
      el.messages.appendChild(entry.el);
      renderEmpty();
    }
  }

  function addNotice(text) {
    if (!text) return;
    const last = S.entries[S.entries.length - 1];
    if (last && last.notice && last.text === text) return; // don't stack the same notice
    addEntry({ key: null, notice: true, from: "system", text: String(text), ts: Date.now() / 1000 });
    scrollToBottom(false);
  }

  function setEntryState(entry, state, retryable) {
    entry.state = state;
    entry.retryable = !!retryable;
    if (entry.el) {
      // update in place (no re-insert, so the entry animation does not replay)
      entry.el.setAttribute("data-state", state);
      const meta = entry.el.querySelector(".meta");
      if (meta) meta.replaceWith(buildMeta(entry));
    }
  }

  function renderAll() {
    if (!S.mounted) return;
    el.messages.textContent = "";
    const frag = document.createDocumentFragment();
    for (const e of S.entries) {
      if (!e.el) e.el = buildEntry(e);
      e.el.classList.remove("anim"); // re-inserted nodes would replay their entry animation
      frag.appendChild(e.el);
    }
    el.messages.appendChild(frag);
    renderEmpty();
  }

  function renderEmpty() {
    el.empty.hidden = S.entries.length > 0;
  }

  function buildEntry(e) {
    const div = document.createElement("div");
    if (e.notice) {
      div.className = "notice";
      div.setAttribute("data-xiaoer", "notice");
      const b = document.createElement("div");
      b.className = "bubble";
      b.textContent = e.text;
      div.appendChild(b);
      return div;
    }
    div.className = "msg from-" + e.from;
    div.setAttribute("data-xiaoer", "message");
    div.setAttribute("data-from", e.from);
    if (e.id != null) div.setAttribute("data-id", e.id);
    if (e.from === "visitor") div.setAttribute("data-state", e.state || "sent");
    if (e.from === "agent") {
      const label = document.createElement("div");
      label.className = "label";
      label.textContent = e.agent || T.agent;
      div.appendChild(label);
    }
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    const src = e.image ? imageUrl(e.image) : null;
    if (src) {
      const a = document.createElement("a");
      a.className = "image";
      a.href = src;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      const img = document.createElement("img");
      img.className = "thumb";
      img.setAttribute("data-xiaoer", "image");
      img.alt = T.image;
      img.src = src;
      img.addEventListener("load", () => scrollToBottom(false));
      a.appendChild(img);
      bubble.appendChild(a);
    }
    if (e.text) appendLinkified(bubble, e.text);
    div.appendChild(bubble);
    if (e.buttons) div.appendChild(buildButtons(e));

    div.appendChild(buildMeta(e));
    return div;
  }

  // Reply buttons under a message (e.g. a satisfaction survey): a click sends the button's text as a visitor message.
  function buildButtons(e) {
    const row = document.createElement("div");
    row.className = "buttons";
    const chosen = S.chosen.get(e.key);
    for (const b of e.buttons) {
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "pill" + (chosen === b.text ? " chosen" : "");
      btn.setAttribute("data-xiaoer", "button");
      btn.setAttribute("data-text", b.text);
      btn.textContent = b.label;
      btn.disabled = chosen != null;
      btn.addEventListener("click", () => {
        if (S.chosen.has(e.key)) return;
        S.chosen.set(e.key, b.text);
        for (const other of row.children) other.disabled = true;
        btn.classList.add("chosen");
        sendText(b.text);
      });
      row.appendChild(btn);
    }
    return row;
  }

  function buildMeta(e) {
    const meta = document.createElement("div");
    meta.className = "meta";
    const time = document.createElement("time");
    const d = new Date(e.ts * 1000);
    time.textContent = formatTime(d);
    if (!isNaN(d.getTime())) {
      time.dateTime = d.toISOString();
      time.title = d.toLocaleString(LOCALE);
    }
    meta.appendChild(time);
    if (e.from === "visitor") {
      if (e.state === "failed") {
        const f = document.createElement("span");
        f.className = "fail" + (e.retryable ? " retryable" : "");
        f.textContent = e.retryable ? T.failed + " · " + T.retry : T.failed;
        if (e.retryable) {
          f.setAttribute("role", "button");
          f.tabIndex = 0;
          const retry = () => retryEntry(e);
          f.addEventListener("click", retry);
          f.addEventListener("keydown", (ev) => {
            if (ev.key === "Enter" || ev.key === " ") {
              ev.preventDefault();
              retry();
            }
          });
        }
        meta.appendChild(f);
      } else {
        const tick = document.createElement("span");
        tick.className = "tick";
        tick.innerHTML = e.state === "pending" ? ICON_CLOCK : ICON_TICK; // constant markup
        tick.title = e.state === "pending" ? T.sending : "";
        meta.appendChild(tick);
      }
    }
    return meta;
  }

  // Resend a pending message after the server's retry_after (seconds), doubling per attempt, with jitter.
  function scheduleResend(entry, retryAfter) {
    const base = typeof retryAfter === "number" && isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 1000;
    const tries = (entry.resends = (entry.resends || 0) + 1);
    const delay = Math.min(RESEND_MAX_MS, base * Math.pow(2, Math.min(tries - 1, 4))) * (0.75 + Math.random() * 0.5);
    clearTimeout(entry.resendTimer);
    entry.resendTimer = setTimeout(() => {
      entry.resendTimer = 0;
      // not ready: the next ready resends every pending message anyway
      if (entry.state === "pending" && S.ready) transmit(entry);
    }, delay);
  }

  function retryEntry(entry) {
    if (entry.state !== "failed") return;
    setEntryState(entry, "pending");
    if (S.ready) transmit(entry);
  }

  const URL_RE = /https?:\/\/[^\s<>"'\u3000-\u303f\uff01-\uff0f\uff1a-\uff20]+/g;

  function appendLinkified(parent, text) {
    let last = 0;
    let m;
    URL_RE.lastIndex = 0;
    while ((m = URL_RE.exec(text))) {
      let url = m[0];
      const trail = /[.,;:!?)\]}]+$/.exec(url);
      if (trail) url = url.slice(0, url.length - trail[0].length);
      let ok = false;
      try {
        const u = new URL(url);
        ok = u.protocol === "http:" || u.protocol === "https:";
      } catch (e) {
        ok = false;
      }
      if (!ok) continue;
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      const a = document.createElement("a");
      a.href = url;
      a.target = "_blank";
      a.rel = "noopener noreferrer nofollow";
      a.textContent = url;
      parent.appendChild(a);
      last = m.index + url.length;
      URL_RE.lastIndex = last;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function pad2(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function formatTime(d) {
    if (isNaN(d.getTime())) return "";
    const now = new Date();
    const hm = pad2(d.getHours()) + ":" + pad2(d.getMinutes());
    if (d.toDateString() === now.toDateString()) return hm;
    const md = pad2(d.getMonth() + 1) + "-" + pad2(d.getDate());
    if (d.getFullYear() === now.getFullYear()) return md + " " + hm;
    return d.getFullYear() + "-" + md + " " + hm;
  }

  function nearBottom() {
    const m = el.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 120;
  }

  function scrollToBottom(force) {
    if (!S.mounted) return;
    const m = el.messages;
    if (force || nearBottom()) {
      m.scrollTop = m.scrollHeight;
      // once more after layout (fonts, wrapped lines)
      requestAnimationFrame(() => {
        m.scrollTop = m.scrollHeight;
      });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Connection
  // ---------------------------------------------------------------------------------------------
  function renderStatus() {
    if (!S.mounted) return;
    let state, text;
    if (S.ready) {
      state = "online";
      text = T.online;
    } else if (S.stopped) {
      state = "offline";
      text = T.offline;
    } else {
      const ws = S.ws;
      state = ws && ws.readyState <= 1 ? "connecting" : "offline";
      text = S.everReady ? T.reconnecting : T.connecting;
    }
    el.status.setAttribute("data-state", state);
    el.status.classList.toggle("stopped", S.stopped);
    el.statusText.textContent = text;
  }

  function connect() {
    clearTimeout(S.retryTimer);
    S.retryTimer = 0;
    if (S.stopped || S.unloading || S.ws) return;
    if (!WS_URL) {
      scheduleReconnect(); // e.g. page opened from file:// — keep showing "connecting…"
      return;
    }
    let ws;
    try {
      ws = new WebSocket(WS_URL);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    S.ws = ws;
    S.ready = false;
    renderStatus();
    S.connectTimer = setTimeout(() => {
      if (S.ws === ws && !S.ready) dropSocket(true); // handshake or hello took too long
    }, CONNECT_TIMEOUT_MS);

    ws.onopen = () => {
      if (S.ws !== ws) return;
      S.lastRecv = Date.now();
      wsSend({
        type: "hello",
        visitor: store.get(KEY_VISITOR),
        token: store.get(KEY_TOKEN),
        name: NAME,
        locale: LOCALE,
        page: currentPage(),
        replies_in_ack: true, // one frame per turn: the replies ride in the ack
      });
      clearInterval(S.pingTimer);
      S.pingTimer = setInterval(() => {
        if (S.ws !== ws) return;
        if (Date.now() - S.lastRecv > DEAD_MS) {
          dropSocket(true); // half-open connection: nothing heard for too long
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
        if (window.console) console.error("[xiaoer] frame handling failed", e);
      }
    };
    ws.onerror = () => {
      /* a close event follows */
    };
    ws.onclose = (ev) => {
      if (S.ws !== ws) return;
      cleanupSocket();
      if (ev.code === CLOSE_ORIGIN_REFUSED) {
        S.stopped = true;
        renderStatus();
        addNotice(T.refused);
        return;
      }
      if (S.unloading) return;
      scheduleReconnect();
    };
  }

  function cleanupSocket() {
    const ws = S.ws;
    S.ws = null;
    S.ready = false;
    clearInterval(S.pingTimer);
    clearTimeout(S.connectTimer);
    S.pingTimer = 0;
    S.connectTimer = 0;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    }
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
    if (S.stopped || S.unloading) return;
    clearTimeout(S.retryTimer);
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, S.attempt));
    S.attempt = Math.min(S.attempt + 1, 20);
    // jitter: 75%..125% of the base delay, never above the maximum
    const delay = Math.min(BACKOFF_MAX_MS, Math.round(base * (0.75 + Math.random() * 0.5)));
    S.retryTimer = setTimeout(connect, delay);
    renderStatus();
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

  function handleFrame(f) {
    switch (f.type) {
      case "ready":
        return onReady(f);
      case "message":
        return onServerMessage(f);
      case "ack":
        return onAck(f);
      case "typing":
        if (f.from === "agent") showAgentTyping();
        return undefined;
      case "error":
        return onError(f);
      case "pong":
      default:
        return undefined;
    }
  }

  function onReady(f) {
    if (f.visitor != null && f.token != null) {
      store.set(KEY_VISITOR, String(f.visitor));
      store.set(KEY_TOKEN, String(f.token));
    }
    S.ready = true;
    S.everReady = true;
    S.attempt = 0;
    clearTimeout(S.connectTimer);
    S.connectTimer = 0;

    // Replace the list with the history; keep local visitor messages the server has not stored yet.
    const keep = S.entries.filter((e) => e.local && e.from === "visitor" && e.state !== "sent");
    const wasNearBottom = !S.mounted || nearBottom();
    S.entries = [];
    S.byKey.clear();
    const history = Array.isArray(f.history) ? f.history : [];
    for (const m of history) {
      if (m && typeof m === "object") acceptServerMessage(m);
    }
    for (const e of keep) {
      const stored = S.byKey.get(e.key);
      if (stored) {
        // already in the transcript: the ack got lost with the old socket
        stored.state = "sent";
        continue;
      }
      S.entries.push(e);
      S.byKey.set(e.key, e);
    }
    renderAll();
    renderStatus();
    scrollToBottom(S.open || wasNearBottom);

    // (Re)send everything still pending, with the same client ids (the server dedupes them).
    for (const e of S.entries) {
      if (e.from === "visitor" && e.state === "pending") transmit(e);
    }
  }

  function onServerMessage(f) {
    if (f.from === "agent" && S.mounted) {
      clearTimeout(S.typingTimer);
      el.typing.hidden = true;
    }
    // Measure before the new bubble adds its height: a long reply must not look like "scrolled up".
    const wasNearBottom = S.mounted && nearBottom();
    const added = acceptServerMessage(f);
    if (!added) return;
    const last = S.entries[S.entries.length - 1];
    scrollToBottom(wasNearBottom || (last && last.from === "visitor"));
    if (last && last.from !== "visitor" && !S.open) {
      S.unread += 1;
      renderUnread();
    }
  }

  function onAck(f) {
    if (Array.isArray(f.messages)) {
      for (const m of f.messages) {
        if (m && typeof m === "object") onServerMessage(m);
      }
    }
    if (f.id == null) return;
    const entry = S.byKey.get(keyOf("visitor", String(f.id)));
    if (entry && entry.state !== "sent") setEntryState(entry, "sent");
  }

  function onError(f) {
    const code = String(f.code || "");
    if (f.id != null) {
      const entry = S.byKey.get(keyOf("visitor", String(f.id)));
      if (entry && entry.state === "pending") {
        if (FAIL_PERMANENT[code]) setEntryState(entry, "failed", false);
        else if (FAIL_RETRYABLE[code]) setEntryState(entry, "failed", true);
        else if (RESEND[code]) scheduleResend(entry, f.retry_after);
        // anything else (e.g. not_ready): stays pending and is resent after the next ready
      }
    }
    if (f.message) addNotice(String(f.message));
    if (code === "bad_token") {
      // our stored identity is not accepted: forget it and start again as a new visitor
      store.remove(KEY_VISITOR);
      store.remove(KEY_TOKEN);
      S.attempt = 0;
      dropSocket(true);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Page lifecycle
  // ---------------------------------------------------------------------------------------------
  window.addEventListener("pagehide", (ev) => {
    S.unloading = true;
    if (!ev.persisted) return;
    // going into the back/forward cache: close cleanly, reconnect on pageshow
    dropSocket(false);
    clearTimeout(S.retryTimer);
  });
  window.addEventListener("pageshow", (ev) => {
    if (!ev.persisted) return;
    S.unloading = false;
    S.attempt = 0;
    connect();
  });
  window.addEventListener("online", () => {
    // the network is back: don't wait for the backoff timer
    if (!S.ws && !S.stopped && !S.unloading) {
      S.attempt = 0;
      connect();
    }
  });

  // ---------------------------------------------------------------------------------------------
  // Public API
  // ---------------------------------------------------------------------------------------------
  window.Xiaoer = {
    open() {
      openPanel(true);
    },
    close() {
      closePanel();
    },
    toggle() {
      if (S.open) closePanel();
      else openPanel(true);
    },
    /** Sends text as the visitor (queued while offline); opens the panel. Returns the client id or null. */
    send(text) {
      const id = sendText(text);
      if (id) openPanel(false);
      return id;
    },
  };

  // ---------------------------------------------------------------------------------------------
  // Start
  // ---------------------------------------------------------------------------------------------
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
  connect();
})();
