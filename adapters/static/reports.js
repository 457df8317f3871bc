// Supervisors' reports: figures from /desk/api/reports drawn as SVG charts (no libraries, nothing
// loaded from elsewhere), and the FAQ gaps from /desk/api/faq-gaps with drafts to copy.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  const { el } = window.XiaoerUI;
  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, String(v)));
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function fmt(x, digits) {
    if (x === null || x === undefined) return "–";
    return typeof x === "number" ? String(Math.round(x * Math.pow(10, digits || 0)) / Math.pow(10, digits || 0)) : String(x);
  }
  function pct(x) { return x === null || x === undefined ? "–" : Math.round(x * 1000) / 10 + "%"; }
  function secs(x) {
    if (x === null || x === undefined) return "–";
    return x < 120 ? x + " s" : Math.round(x / 6) / 10 + " min";
  }
  function isoDay(d) { return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0"); }

  // ---- charts ------------------------------------------------------------------------------------
  const W = 560, H = 220, PAD = { l: 40, r: 10, t: 10, b: 34 };

  function frame(host, max, labels) {
    host.textContent = "";
    const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img" });
    const ih = H - PAD.t - PAD.b;
    for (let i = 0; i <= 4; i++) {
      const y = PAD.t + ih - (ih * i) / 4;
      svg.appendChild(svgEl("line", { x1: PAD.l, x2: W - PAD.r, y1: y, y2: y, stroke: "#e3e7ec" }));
      svg.appendChild(svgEl("text", { x: PAD.l - 6, y: y + 4, "text-anchor": "end" }, fmt((max * i) / 4, max < 8 ? 1 : 0)));
    }
    const step = Math.max(1, Math.ceil(labels.length / 12));
    const bw = (W - PAD.l - PAD.r) / Math.max(1, labels.length);
    labels.forEach((label, i) => {
      if (i % step === 0) svg.appendChild(svgEl("text", { x: PAD.l + bw * i + bw / 2, y: H - PAD.b + 16, "text-anchor": "middle" }, label));
    });
    host.appendChild(svg);
    return { svg, bw, y: (v) => PAD.t + ih - (ih * v) / (max || 1), ih };
  }

  function niceMax(values) {
    const m = Math.max(1, ...values.filter((v) => typeof v === "number"));
    const p = Math.pow(10, Math.floor(Math.log10(m)));
    return Math.ceil(m / p) * p;
  }

  function stackedBars(host, labels, series, colors) {
    const totals = labels.map((_, i) => series.reduce((s, row) => s + (row[i] || 0), 0));
    const f = frame(host, niceMax(totals), labels);
    labels.forEach((label, i) => {
      let base = 0;
      series.forEach((row, k) => {
        const v = row[i] || 0;
        if (!v) return;
        const top = f.y(base + v), bottom = f.y(base);
        const rect = svgEl("rect", { x: PAD.l + f.bw * i + f.bw * 0.15, y: top, width: f.bw * 0.7, height: Math.max(0, bottom - top), fill: colors[k], "data-bar": "1" });
        rect.appendChild(svgEl("title", {}, `${label}: ${v}`));
        f.svg.appendChild(rect);
        base += v;
      });
    });
  }

  function lines(host, labels, series, colors) {
    const f = frame(host, niceMax(series.flat()), labels);
    series.forEach((row, k) => {
      const pts = row.map((v, i) => (typeof v === "number" ? [PAD.l + f.bw * i + f.bw / 2, f.y(v)] : null));
      const d = pts.filter(Boolean).map((p, i) => (i ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1)).join(" ");
      if (d) f.svg.appendChild(svgEl("path", { d, fill: "none", stroke: colors[k], "stroke-width": 2, "data-line": "1" }));
      pts.forEach((p, i) => {
        if (!p) return;
        const dot = svgEl("circle", { cx: p[0], cy: p[1], r: 3, fill: colors[k] });
        dot.appendChild(svgEl("title", {}, `${labels[i]}: ${row[i]} s`));
        f.svg.appendChild(dot);
      });
    });
  }

  function scoreBars(host, scores) {
    const labels = ["1", "2", "3", "4", "5"];
    const colors = ["#d64545", "#e8833a", "#c9b037", "#7cb87c", "#2f9e77"];
    const f = frame(host, niceMax(labels.map((s) => scores[s] || 0)), labels.map((s) => s + "★"));
    labels.forEach((s, i) => {
      const v = scores[s] || 0;
      const top = f.y(v);
      const rect = svgEl("rect", { x: PAD.l + f.bw * i + f.bw * 0.2, y: top, width: f.bw * 0.6, height: f.y(0) - top, fill: colors[i], "data-bar": "1" });
      rect.appendChild(svgEl("title", {}, `${s}: ${v}`));
      f.svg.appendChild(rect);
    });
  }

  // ---- page ----------------------------------------------------------------------------------------
  function kpi(label, value, sub) {
    const card = el("div", { class: "kpi" });
    card.appendChild(el("div", { class: "label" }, label));
    card.appendChild(el("div", { class: "value" }, value));
    if (sub) card.appendChild(el("div", { class: "sub" }, sub));
    return card;
  }

  const table = (id, head, rows) => window.XiaoerUI.table(id, head, rows, "暂无数据 / no data");

  function render(r) {
    const k = $("kpis");
    k.textContent = "";
    k.appendChild(kpi("会话 Conversations", fmt(r.conversations), `${r.messages} 条买家消息 buyer messages`));
    k.appendChild(kpi("机器人解决 Bot resolved", pct(r.deflection_rate), `${r.bot_resolved} / 转人工 ${r.handed_over}`));
    k.appendChild(kpi("首次响应 First response p50", secs(r.first_response_seconds.p50), `p90 ${secs(r.first_response_seconds.p90)}`));
    k.appendChild(kpi("排队 Queue wait p50", secs(r.queue_wait_seconds.p50), `p90 ${secs(r.queue_wait_seconds.p90)}`));
    k.appendChild(kpi("超时改派 Reassignments", fmt(r.reassignments), `转接 transfers ${r.transfers}`));
    k.appendChild(kpi("满意度 Satisfaction", r.csat.average === null ? "–" : fmt(r.csat.average, 2) + " / 5",
      `4-5分 ${pct(r.csat.satisfied_share)} · 回复率 ${pct(r.csat.response_rate)} · ${r.csat.ratings} 个评分`));

    const days = r.by_day.map((d) => d.date.slice(5));
    stackedBars($("chart-days"), days, [r.by_day.map((d) => d.bot_resolved), r.by_day.map((d) => d.handed_over)], ["#2f9e77", "#e8833a"]);
    lines($("chart-frt"), days, [r.by_day.map((d) => d.first_response_seconds.p50), r.by_day.map((d) => d.first_response_seconds.p90)], ["#3366cc", "#e8833a"]);
    stackedBars($("chart-hours"), r.by_hour.map((h) => String(h.hour).padStart(2, "0")), [r.by_hour.map((h) => h.messages)], ["#3366cc"]);
    scoreBars($("chart-csat"), r.csat.scores || {});

    table("agents", ["客服 Agent", "接待 Chats", "结束 Closed", "首响 p50", "首响 p90", "改派 Reassigned", "评分 Ratings", "平均 Avg"],
      r.by_agent.map((a) => [a.display_name, a.chats, a.closed, secs(a.first_response_seconds.p50), secs(a.first_response_seconds.p90),
        a.reassignments, a.csat.ratings, fmt(a.csat.average, 2)]));
    table("groups", ["技能组 Group", "转人工 Handed over", "排队 p50", "排队 p90", "首响 p50", "首响 p90", "改派 Reassigned"],
      r.by_group.map((g) => [g.display_name, g.handed_over, secs(g.queue_wait_seconds.p50), secs(g.queue_wait_seconds.p90),
        secs(g.first_response_seconds.p50), secs(g.first_response_seconds.p90), g.reassignments]));
    table("channels", ["渠道 Channel", "会话 Conversations", "转人工 Handed over", "机器人解决 Bot resolved", "消息 Messages"],
      r.by_channel.map((c) => [c.channel, c.conversations, c.handed_over, pct(c.deflection_rate), c.messages]));
  }

  function renderGaps(data) {
    const host = $("gaps");
    host.textContent = "";
    if (!data.gaps.length) {
      host.appendChild(el("div", { class: "muted" }, "没有未能回答的问题 / nothing the bot could not answer"));
      return;
    }
    data.gaps.forEach((g) => {
      const item = el("div", { class: "gap", "data-gap": "1" });
      const head = el("div");
      head.appendChild(el("span", { class: "count" }, "×" + g.count));
      head.appendChild(el("span", {}, g.examples.join(" · ")));
      item.appendChild(head);
      if (g.answers.length) item.appendChild(el("div", { class: "muted" }, "客服的回答 Agents answered: " + g.answers.join(" / ")));
      item.appendChild(el("pre", {}, g.draft));
      const copy = el("button", { type: "button", class: "ghost" }, "复制 FAQ 草稿 Copy draft");
      copy.addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText(g.draft));
      item.appendChild(copy);
      host.appendChild(item);
    });
  }

  async function fetchJson(url) {
    const resp = await fetch(url, { credentials: "same-origin" });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(body.message || resp.status);
    return body;
  }

  async function load() {
    const q = `from=${encodeURIComponent($("from").value)}&to=${encodeURIComponent($("to").value)}`;
    $("csv").href = "/desk/api/reports.csv?" + q;
    $("error").hidden = true;
    try {
      render(await fetchJson("/desk/api/reports?" + q));
      renderGaps(await fetchJson("/desk/api/faq-gaps?days=7"));
      document.body.dataset.loaded = "1";
    } catch (err) {
      $("error").textContent = "无法加载报表 / cannot load the report: " + err.message;
      $("error").hidden = false;
    }
  }

  const params = new URLSearchParams(location.search);
  const today = new Date();
  $("to").value = params.get("to") || isoDay(today);
  $("from").value = params.get("from") || isoDay(new Date(today.getTime() - 6 * 86400000));
  $("load").addEventListener("click", load);
  $("reload").addEventListener("click", async () => {
    const out = $("reload-result");
    out.textContent = "…";
    const resp = await fetch("/desk/api/reload", { method: "POST", credentials: "same-origin" });
    const body = await resp.json().catch(() => ({}));
    out.textContent = resp.ok ? "已重新加载 / reloaded" : "未加载，原内容保留 / refused: " + (body.problems || [body.message]).join("; ");
    out.dataset.ok = resp.ok ? "1" : "0";
  });
  load();
})();
