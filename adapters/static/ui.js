// Small DOM helpers shared by the supervisors' pages (reports, live view).
window.XiaoerUI = (function () {
  "use strict";
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  }
  // Fill <table id=...> with a header row and rows of cells (text or nodes); `empty` when no rows.
  function table(id, head, rows, empty) {
    const t = document.getElementById(id);
    t.textContent = "";
    const tr = el("tr");
    head.forEach((h) => tr.appendChild(el("th", {}, h)));
    t.appendChild(tr);
    rows.forEach((cells) => {
      const r = el("tr");
      cells.forEach((c) => { const td = el("td"); td.append(c === null || c === undefined ? "" : c); r.appendChild(td); });
      t.appendChild(r);
    });
    if (!rows.length && empty) {
      const r = el("tr");
      r.appendChild(el("td", { colspan: head.length, class: "muted" }, empty));
      t.appendChild(r);
    }
  }
  return { el, table };
})();
