// Supervisors' live view over the desk socket: every agent, open chat and queue ("monitor" frames),
// the newest message of each chat ("watch" frames), take over or hand a chat to another agent.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  let view = { agents: [], chats: [], queue: [] };
  const latest = {};
  let ws = null;

  const { el, table } = window.XiaoerUI;
  function since(ts) {
    if (!ts) return "–";
    const s = Math.max(0, Math.round(Date.now() / 1000 - ts));
    return s < 120 ? s + " s" : Math.round(s / 60) + " min";
  }
  function actions(chat) {
    const box = el("span");
    const take = el("button", { type: "button", "data-take": chat.id }, "接管 Take over");
    take.addEventListener("click", () => send({ type: "take_over", conversation: chat.id }));
    const pick = el("select", { "aria-label": "reassign to" });
    pick.appendChild(el("option", { value: "" }, "改派给… Reassign to"));
    view.agents.filter((a) => a.online && a.username !== chat.agent).forEach((a) => pick.appendChild(el("option", { value: a.username }, a.display_name)));
    pick.addEventListener("change", () => pick.value && send({ type: "reassign", conversation: chat.id, agent: pick.value }));
    box.append(take, " ", pick);
    return box;
  }
  function render() {
    table("agents", ["客服 Agent", "状态 Status", "接待 Load", "技能组 Groups"], view.agents.map((a) => [
      a.display_name + (a.role === "supervisor" ? " (主管)" : ""),
      el("span", { class: a.online ? "on" : "off" }, a.online ? "在线 online" : a.status === "away" ? "离开 away" : "离线 offline"),
      `${a.load} / ${a.capacity}`, a.groups.join(", ")]));
    const name = (u) => (view.agents.find((a) => a.username === u) || { display_name: u || "–" }).display_name;
    table("chats", ["买家 Buyer", "客服 Agent", "等待首响 Waiting for first reply", "最新消息 Latest", ""], view.chats.map((c) => [
      (c.customer.name || c.id) + " · " + c.channel, name(c.agent),
      c.first_reply_at ? "已回复 replied" : el("span", { class: "late" }, since(c.queued_at)),
      latest[c.id] || c.preview || "", actions(c)]));
    table("queue", ["#", "买家 Buyer", "技能组 Group", "已等待 Waiting", "留言 Message", ""], view.queue.map((q) => [
      String(q.position), (q.customer.name || q.id) + " · " + q.channel, q.group, since(q.queued_at), q.preview || "", actions(q)]));
  }
  function send(frame) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(frame)); }
  function connect() {
    ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/desk/ws");
    ws.onopen = () => { $("conn").textContent = "已连接 live"; };
    ws.onclose = () => { $("conn").textContent = "重新连接中 reconnecting…"; setTimeout(connect, 2000); };
    ws.onmessage = (msg) => {
      const f = JSON.parse(msg.data);
      if (f.type === "monitor") { view = f; render(); document.body.dataset.live = "1"; }
      else if (f.type === "watch") { const m = f.messages[f.messages.length - 1]; if (m) { latest[f.conversation] = m.text; render(); } }
      else if (f.type === "error") { $("error").textContent = f.message || f.code; if (f.code === "not_logged_in") location.href = "/desk/"; }
    };
  }
  setInterval(render, 5000);
  connect();
})();
