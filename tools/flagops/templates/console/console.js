// flagops console: the live parts of the server-rendered pages. No framework, no build step,
// no request leaves this origin. Every write is a JSON POST carrying the session token.
(() => {
  "use strict";
  const token = document.querySelector('meta[name="flagops-token"]').content;
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const FLASH = "flagops-flash";

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Flagops-Token": token },
      body: JSON.stringify(body || {}),
    });
    let data;
    try { data = await response.json(); } catch (e) { data = { error: response.statusText }; }
    return { ok: response.ok, status: response.status, data };
  }

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const child of children) if (child != null) node.append(child);
    return node;
  }

  function debounce(fn, ms) {
    let timer = null;
    const run = (...args) => { clearTimeout(timer); timer = setTimeout(() => { timer = null; fn(...args); }, ms); };
    run.pending = () => timer !== null;
    run.flush = (...args) => { if (timer !== null) { clearTimeout(timer); timer = null; return fn(...args); } return null; };
    return run;
  }

  function errorText(data) {
    let text = data.error || "the request failed";
    if (data.hint) text += ` (${data.hint})`;
    for (const p of data.problems || []) text += `\n${p.path || ""}:${p.line}:${p.col}: ${p.message} (${p.rule})`;
    return text;
  }

  // ------------------------------------------------------------------ flash after a reload

  function flash(message, kind) { sessionStorage.setItem(FLASH, JSON.stringify({ message, kind })); }
  function showFlash() {
    const raw = sessionStorage.getItem(FLASH);
    if (!raw) return;
    sessionStorage.removeItem(FLASH);
    const { message, kind } = JSON.parse(raw);
    if (kind === "proposal") { showProposal(message); return; }
    const banner = $("#propose-result");
    banner.className = "banner" + (kind === "error" ? " error" : "");
    banner.textContent = message;
    banner.hidden = false;
  }

  // ------------------------------------------------------------------ command palette

  const paletteData = JSON.parse(($("#palette-data") || { textContent: "[]" }).textContent);
  const palette = $("#palette");
  let paletteIndex = 0;

  function paletteMatches(text) {
    const q = text.trim().toLowerCase();
    const scored = [];
    for (const item of paletteData) {
      const key = item.key.toLowerCase();
      const at = key.indexOf(q);
      const inDesc = (item.description || "").toLowerCase().includes(q);
      if (q && at < 0 && !inDesc) continue;
      scored.push([at === 0 ? 0 : at > 0 ? 1 : 2, item.deleted ? 1 : 0, item.key, item]);
    }
    scored.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2].localeCompare(b[2]));
    return scored.slice(0, 12).map((s) => s[3]);
  }

  function renderPalette() {
    const list = $("#palette-list");
    const items = paletteMatches($("#palette-input").value);
    paletteIndex = Math.min(paletteIndex, Math.max(items.length - 1, 0));
    list.replaceChildren(...items.map((item, i) => {
      const li = el("li", { role: "option", "data-key": item.key, "aria-selected": String(i === paletteIndex) },
        el("span", { class: "key", text: item.key }),
        item.deleted ? el("span", { class: "badge deleted", text: "deleted" }) : null,
        el("span", { class: "desc", text: item.description || "" }));
      li.addEventListener("click", () => go(item.key));
      return li;
    }));
    return items;
  }

  function go(key) { window.location.href = `/flags/${encodeURIComponent(key)}`; }

  function openPalette() {
    if (!palette || palette.open) return;
    $("#palette-input").value = "";
    paletteIndex = 0;
    renderPalette();
    palette.showModal();
    $("#palette-input").focus();
  }

  if (palette) {
    $("#palette-open").addEventListener("click", openPalette);
    $("#palette-input").addEventListener("input", () => { paletteIndex = 0; renderPalette(); });
    $("#palette-input").addEventListener("keydown", (event) => {
      const items = paletteMatches($("#palette-input").value);
      if (event.key === "ArrowDown") { paletteIndex = Math.min(paletteIndex + 1, items.length - 1); renderPalette(); event.preventDefault(); }
      else if (event.key === "ArrowUp") { paletteIndex = Math.max(paletteIndex - 1, 0); renderPalette(); event.preventDefault(); }
      else if (event.key === "Enter") { event.preventDefault(); if (items[paletteIndex]) go(items[paletteIndex].key); }
    });
    palette.addEventListener("click", (event) => { if (event.target === palette) palette.close(); });
    document.addEventListener("keydown", (event) => {
      const typing = event.target.closest && event.target.closest("input, textarea, select, [contenteditable]");
      if ((event.key === "k" || event.key === "K") && (event.ctrlKey || event.metaKey)) { event.preventDefault(); openPalette(); }
      else if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) { event.preventDefault(); openPalette(); }
    });
  }

  // ------------------------------------------------------------------ the flags table: search

  const search = $("#search");
  if (search) {
    const tbody = $("#flags tbody");
    const live = $$("#flags tbody tr").filter((r) => !r.hasAttribute("data-deleted"));
    // Deleted flags: rows kept aside, shown only while a search finds them.
    const deleted = new Map([...$$("#flags tbody tr[data-deleted]"),
      ...Array.from($("#deleted-rows").content.querySelectorAll("tr"))].map((r) => [r.dataset.key, r]));
    let sequence = 0;
    const apply = async () => {
      const query = search.value.trim();
      const mine = ++sequence;
      let keys = null;
      let tenants = [];
      if (query) {
        const response = await fetch(`/api/search?q=${encodeURIComponent(query)}`, { credentials: "same-origin" });
        const data = await response.json();
        if (mine !== sequence) return;
        keys = new Set(data.keys);
        tenants = data.tenants;
      }
      let shown = 0;
      for (const row of live) {
        row.hidden = keys !== null && !keys.has(row.dataset.key);
        if (!row.hidden) shown += 1;
      }
      let extra = 0;
      for (const [key, row] of deleted) {
        if (keys !== null && keys.has(key)) { tbody.append(row); extra += 1; } else row.remove();
      }
      $("#count").textContent = `${shown} of ${live.length} flags` + (extra ? ` (+${extra} deleted)` : "");
      $("#no-match").hidden = shown + extra > 0;
      const banner = $("#tenant-banner");
      banner.hidden = tenants.length === 0;
      banner.textContent = tenants.map((t) => {
        const on = Object.keys(t.on);
        return `Tenant ${t.slug}: ${on.length} flag${on.length === 1 ? "" : "s"} on` +
          (on.length ? ` (${on.map((k) => `${k} in ${t.on[k].join(", ")}`).join("; ")})` : "");
      }).join(" · ");
      const url = new URL(window.location.href);
      if (query) url.searchParams.set("q", query); else url.searchParams.delete("q");
      history.replaceState(null, "", url);
    };
    const later = debounce(apply, 120);
    search.addEventListener("input", later);
    search.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { search.value = ""; apply(); }
      if (event.key === "Enter") {
        event.preventDefault();
        Promise.resolve(later.flush() || null).then(() => {
          const visible = $$("#flags tbody tr").filter((r) => !r.hidden);
          if (visible.length === 1) go(visible[0].dataset.key);
        });
      }
    });
    apply();
  }

  // ------------------------------------------------------------------ new flag

  const newButton = $("#new-flag");
  if (newButton) {
    const dialog = $("#new-dialog");
    const form = $("#new-form");
    newButton.addEventListener("click", () => { $("#new-error").hidden = true; dialog.showModal(); form.elements.key.focus(); });
    $("#new-cancel").addEventListener("click", () => dialog.close());
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = Object.fromEntries(new FormData(form).entries());
      const { ok, data } = await post("/api/flags", body);
      if (!ok) { $("#new-error").textContent = errorText(data); $("#new-error").hidden = false; return; }
      flash(`Created flags/${data.key}.yaml (off for everyone). Propose turns it into a pull request.`);
      window.location.href = data.url;
    });
  }

  // ------------------------------------------------------------------ propose

  function showProposal(p) {
    const banner = $("#propose-result");
    banner.className = "banner";
    const parts = [`${p.added ? "Added a commit to" : "Proposed on the new branch"} `, el("code", { text: p.branch }),
      ` (pushed to ${p.remote}, into ${p.base}): ${p.subject}. `];
    if (p.kind === "pull-request") parts.push("Pull request: ", el("a", { href: p.url, text: p.url, "data-testid": "propose-link" }));
    else if (p.kind === "compare") parts.push(el("a", { href: p.url, text: "Open the pull request", "data-testid": "propose-link" }), ` (${p.url})`);
    else parts.push(`The remote is not GitHub: open a merge request for the branch ${p.branch} there.`);
    banner.replaceChildren(...parts);
    banner.hidden = false;
  }

  $("#propose").addEventListener("click", async () => {
    if (editor && isDirty()) {
      const banner = $("#propose-result");
      banner.className = "banner error";
      banner.textContent = "This page has unsaved changes: save or discard them first; Propose commits what is saved.";
      banner.hidden = false;
      return;
    }
    const button = $("#propose");
    button.disabled = true;
    const { ok, data } = await post("/api/propose", { title: $("#propose-title").value });
    button.disabled = false;
    if (!ok) {
      const banner = $("#propose-result");
      banner.className = "banner error";
      banner.textContent = `Not proposed: ${errorText(data)}`;
      banner.hidden = false;
      return;
    }
    flash(data, "proposal");
    window.location.reload();
  });

  // ------------------------------------------------------------------ the flag editor

  const editor = $("#editor");
  let isDirty = () => false;
  if (editor) {
    const key = editor.dataset.key;
    let base = editor.dataset.base;
    const axes = $$(".chips", editor).map((c) => c.dataset.axis);
    const read = () => ({
      state: ($('.segmented [aria-checked="true"]', editor) || {}).dataset.state,
      pct: Number.parseInt($("#pct").value, 10),
      scope: Object.fromEntries(axes.map((axis) => [axis,
        $$(`.chips[data-axis="${axis}"] .chip`, editor).map((c) => c.dataset.value)])),
      description: $("#description").value,
      owner: $("#owner").value,
      expires: $("#expires").value,
    });
    const initial = JSON.stringify(read());
    isDirty = () => JSON.stringify(read()) !== initial;
    let lastPreview = null;
    let armed = false; // the risk warning was on screen when Save was clicked
    let sequence = 0;

    const setRisk = (risks) => {
      const panel = $("#risk");
      $("#risk-list").replaceChildren(...risks.map((r) => el("li", { text: `${r.environment}: ${r.message}` })));
      panel.hidden = risks.length === 0;
      $("#save").textContent = risks.length && armed ? "Save anyway (risky)" : "Save";
    };

    const renderPreview = (data) => {
      lastPreview = data;
      const problems = $("#preview-problems");
      problems.replaceChildren(...(data.problems || []).map((p) => el("li", { class: p.severity,
        text: `line ${p.line}: ${p.severity}: ${p.message} (${p.rule})` })));
      problems.hidden = !(data.problems || []).length;
      const diff = $("#diff");
      diff.replaceChildren(...(data.diff ? data.diff.split("\n").map((line) => el("span", {
        class: line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : "",
        text: line + "\n" })) : [document.createTextNode("(no unsaved changes)")]));
      for (const [env, e] of Object.entries(data.environments || {})) {
        const box = $(`#preview-${CSS.escape(env)}`);
        if (!box) continue;
        const counts = $(".counts", box);
        if (!data.changed) {
          counts.textContent = `${e.enabledAfter} of ${e.total} tenants`;
          $(".flips", box).replaceChildren();
          continue;
        }
        counts.replaceChildren(`${e.enabledBefore} of ${e.total} → `,
          el("span", { class: "after", text: `${e.enabledAfter} of ${e.total}` }), " tenants");
        const flips = [];
        for (const [what, count, list, cls] of [["on", e.turnedOnCount, e.turnedOn, "turn-on"], ["off", e.turnedOffCount, e.turnedOff, "turn-off"]]) {
          if (!count) continue;
          const more = count > list.length ? ` and ${count - list.length} more` : "";
          flips.push(el("p", { class: cls, text: `${what === "on" ? "+" : "−"}${count} turn ${what}: ${list.join(", ")}${more}` }));
        }
        if (!flips.length) flips.push(el("p", { class: "muted", text: "nothing flips" }));
        const plans = Object.entries(e.byPlan || {});
        if (plans.length) {
          flips.push(el("table", {}, el("tbody", {}, ...plans.map(([plan, c]) =>
            el("tr", {}, el("th", { text: plan }), el("td", { class: "turn-on", text: c.on ? `+${c.on}` : "" }),
              el("td", { class: "turn-off", text: c.off ? `−${c.off}` : "" }))))));
        }
        $(".flips", box).replaceChildren(...flips);
      }
      setRisk(data.risks || []);
    };

    const runPreview = async () => {
      const mine = ++sequence;
      const { ok, data } = await post(`/api/flags/${encodeURIComponent(key)}/preview`, { base, flag: read() });
      if (mine !== sequence) return lastPreview;
      if (!ok) { $("#save-status").textContent = errorText(data); return null; }
      renderPreview(data);
      return data;
    };
    let inflight = null;
    const schedule = debounce(() => { inflight = runPreview(); return inflight; }, 150);

    const changed = () => {
      armed = false;
      $("#dirty").hidden = !isDirty();
      $("#pct-field").classList.toggle("inactive", read().state !== "rollout");
      $("#save-status").textContent = "";
      schedule();
    };

    for (const button of $$(".segmented [role=radio]", editor)) {
      button.addEventListener("click", () => {
        for (const other of $$(".segmented [role=radio]", editor)) other.setAttribute("aria-checked", String(other === button));
        changed();
      });
    }
    const range = $("#pct-range");
    const number = $("#pct");
    range.addEventListener("input", () => { number.value = range.value; changed(); });
    number.addEventListener("input", () => {
      const n = Number.parseInt(number.value, 10);
      if (!Number.isNaN(n)) range.value = String(Math.max(0, Math.min(100, n)));
      changed();
    });
    for (const input of [$("#description"), $("#owner"), $("#expires")]) input.addEventListener("input", changed);

    const addChip = (box, value) => {
      value = value.trim();
      if (!value || $$(".chip", box).some((c) => c.dataset.value === value)) return;
      const chip = el("li", { class: "chip", "data-value": value }, value + " ",
        el("button", { type: "button", class: "chip-x", "aria-label": `Remove ${value}`, text: "×" }));
      $(".chip-list", box).append(chip);
      changed();
    };
    for (const box of $$(".chips", editor)) {
      const input = $(".chip-input", box);
      box.addEventListener("click", (event) => {
        if (event.target.classList.contains("chip-x")) { event.target.closest(".chip").remove(); changed(); }
      });
      input.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === ",") { event.preventDefault(); addChip(box, input.value); input.value = ""; }
        if (event.key === "Backspace" && !input.value) { const chips = $$(".chip", box); if (chips.length) { chips.at(-1).remove(); changed(); } }
      });
      const options = $("datalist", box);
      const known = () => $$("option", options).map((o) => o.value);
      // Picking an entry of the list (or leaving the field on a known value) takes it as a chip.
      input.addEventListener("change", () => {
        if (known().includes(input.value)) { addChip(box, input.value); input.value = ""; }
      });
      if (box.dataset.axis === "tenantSlugs") {
        const complete = debounce(async () => {
          const response = await fetch(`/api/tenants?q=${encodeURIComponent(input.value)}`, { credentials: "same-origin" });
          const list = await response.json();
          options.replaceChildren(...list.map((t) => el("option", { value: t.slug,
            label: `${t.plan}${t.name ? " · " + t.name : ""} · ${t.environments.join(", ")}` })));
        }, 100);
        input.addEventListener("input", complete);
      }
    }

    window.addEventListener("beforeunload", (event) => {
      if (isDirty()) { event.preventDefault(); event.returnValue = ""; }
    });

    const settle = async () => {
      const flushed = schedule.flush();
      if (flushed) return flushed;
      if (inflight) return inflight;
      inflight = runPreview();
      return inflight;
    };

    editor.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!isDirty()) { $("#save-status").textContent = "Nothing to save."; return; }
      const riskVisible = !$("#risk").hidden;
      const data = await settle();
      if (!data) return;
      if ((data.problems || []).some((p) => p.severity === "error")) {
        $("#save-status").textContent = "Not saved: fix the problems shown in the preview."; return;
      }
      if (data.risky && !(armed || riskVisible)) {
        armed = true; setRisk(data.risks);
        $("#save-status").textContent = "This change is risky: review the warning, then Save again."; return;
      }
      const save = $("#save");
      save.disabled = true;
      const result = await post(`/api/flags/${encodeURIComponent(key)}/save`, { base, flag: read(), acknowledgeRisks: data.risky });
      save.disabled = false;
      if (!result.ok) {
        if (result.status === 409) { armed = true; await runPreview(); }
        $("#save-status").textContent = `Not saved: ${errorText(result.data)}`; return;
      }
      base = result.data.base || base;
      isDirty = () => false;
      const summary = Object.values(result.data.impact || {}).map((e) =>
        `${e.environment} ${e.enabledBefore} of ${e.total} → ${e.enabledAfter} of ${e.total}`).join("; ");
      flash(`Saved flags/${key}.yaml${summary ? ": " + summary : ""}. Propose turns it into a pull request.`);
      window.location.reload();
    });

    $("#discard").addEventListener("click", () => { isDirty = () => false; window.location.reload(); });

    $("#kill").addEventListener("click", async () => {
      const reason = $("#kill-reason").value.trim();
      if (!reason) { $("#save-status").textContent = "Say why in the kill reason first."; $("#kill-reason").focus(); return; }
      const { ok, data } = await post(`/api/flags/${encodeURIComponent(key)}/kill`, { reason });
      if (!ok) { $("#save-status").textContent = `Not killed: ${errorText(data)}`; return; }
      isDirty = () => false;
      flash(`Killed ${key} in every environment: ${reason}. Propose turns it into a pull request.`);
      window.location.reload();
    });

    const restore = $("#restore");
    if (restore) restore.addEventListener("click", async () => {
      let { ok, status, data } = await post(`/api/flags/${encodeURIComponent(key)}/restore`, {});
      if (status === 409 && window.confirm(`Restoring ${key} is risky: ${data.error}. Restore anyway?`)) {
        ({ ok, data } = await post(`/api/flags/${encodeURIComponent(key)}/restore`, { acknowledgeRisks: true }));
      }
      if (!ok) { $("#save-status").textContent = `Not restored: ${errorText(data)}`; return; }
      isDirty = () => false;
      flash(`Restored ${key} as it was before the kill.`);
      window.location.reload();
    });

    $("#delete-flag").addEventListener("click", async () => {
      const on = Number.parseInt($("#delete-flag").dataset.stillOn || "0", 10);
      const warning = on ? `It is still on for ${on} tenant${on === 1 ? "" : "s"}.` : "It is off for every tenant.";
      if (!window.confirm(`Delete ${key}? ${warning}`)) return;
      const { ok, data } = await post(`/api/flags/${encodeURIComponent(key)}/delete`, { confirm: true });
      if (!ok) { $("#save-status").textContent = `Not deleted: ${errorText(data)}`; return; }
      isDirty = () => false;
      flash(`Deleted flags/${key}.yaml${on ? ` (it was still on for ${on} tenants)` : ""}. Propose turns it into a pull request.`);
      window.location.href = "/";
    });
  }

  showFlash();
})();
