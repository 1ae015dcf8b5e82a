// anomalymatch_astro labelling gallery: one ES module, no build step, no network.
//
// Used two ways:
//   * as an anywidget module (default export `render`), talking to Python with
//     model.send(action) / "msg:custom" replies {type: "state", state};
//   * by the standalone server's page (`mount(el, transport)`), talking JSON over fetch.
// Python owns all state (anomalymatch_astro.ui.Gallery); this file only draws it
// and sends actions: {action: "label", id, label}, {action: "undo"}, ...

const KEY_HELP = "a anomaly \u00b7 n normal \u00b7 s skip \u00b7 arrows move \u00b7 u undo \u00b7 [ ] page \u00b7 r retrain";

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

function fmtScore(s) {
  return s === null || s === undefined ? "unscored" : Number(s).toFixed(3);
}

function options(select, values, current, label) {
  select.replaceChildren(...values.map((v) => {
    const o = h("option", { value: v, text: label ? label(v) : v });
    if (v === current) o.selected = true;
    return o;
  }));
}

// Mount the gallery in `el`.  transport.send(action) delivers an action; new states
// arrive through the callback given to transport.listen(cb).  Returns a cleanup function.
export function mount(el, transport) {
  let state = null;
  let focus = 0;
  const images = new Map(); // id -> data URL, valid for imageVersion
  let imageVersion = -1;
  let histogram = null;
  let timer = null;
  let pending = false;

  // data-lm-suppress-shortcuts: JupyterLab (Lumino) leaves keys typed in here alone
  const root = h("div", { class: "amui", tabindex: "0", "data-testid": "amui-root", "data-lm-suppress-shortcuts": "true" });
  const strategySel = h("select", { "data-testid": "strategy", title: "candidate strategy" });
  const viewSel = h("select", { "data-testid": "view", title: "tile view" });
  const stretchSel = h("select", { "data-testid": "stretch", title: "stretch (colour and band views)" });
  const modeSel = h("select", { "data-testid": "mode", title: "training mode" });
  const prevBtn = h("button", { "data-testid": "prev", title: "previous page ([)", text: "\u2190 page" });
  const nextBtn = h("button", { "data-testid": "next", title: "next page (])", text: "page \u2192" });
  const pageInfo = h("span", { class: "amui-page", "data-testid": "page" });
  const undoBtn = h("button", { "data-testid": "undo", title: "undo the last label (u)", text: "Undo" });
  const refreshBtn = h("button", { "data-testid": "refresh", title: "rebuild the candidate list", text: "Refresh" });
  const retrainBtn = h("button", { class: "amui-retrain", "data-testid": "retrain", title: "retrain (r)", text: "Retrain" });
  const counts = h("span", { class: "amui-counts", "data-testid": "counts" });
  const progress = h("div", { class: "amui-progress", "data-testid": "progress", hidden: true },
    h("div", { class: "amui-progress-bar" }), h("span", { class: "amui-progress-text" }));
  const msg = h("div", { class: "amui-msg", "data-testid": "message", role: "status" });
  const err = h("div", { class: "amui-error", "data-testid": "error", role: "alert", hidden: true });
  const grid = h("div", { class: "amui-grid", "data-testid": "grid" });
  const hist = h("img", { class: "amui-hist", "data-testid": "histogram", alt: "score histogram" });
  const side = h("div", { class: "amui-side" }, hist,
    h("div", { class: "amui-keys", text: KEY_HELP }),
    h("div", { class: "amui-legend" },
      h("span", { class: "amui-sw amui-sw-anomaly" }), " anomaly ",
      h("span", { class: "amui-sw amui-sw-normal" }), " normal ",
      h("span", { class: "amui-sw amui-sw-skip" }), " skipped"));
  const bar = h("div", { class: "amui-bar" },
    h("label", {}, "strategy ", strategySel), h("label", {}, "view ", viewSel),
    h("label", {}, "stretch ", stretchSel), prevBtn, pageInfo, nextBtn, undoBtn, refreshBtn,
    h("label", {}, "mode ", modeSel), retrainBtn, counts);
  root.append(bar, progress, msg, err, h("div", { class: "amui-main" }, grid, side));
  el.replaceChildren(root);

  function send(action) {
    pending = true;
    root.classList.add("amui-busy");
    transport.send(action);
  }

  function label(id, word) {
    if (!state) return;
    send({ action: "label", id, label: word });
  }

  function setFocus(i, scroll = true) {
    const tiles = grid.querySelectorAll(".amui-tile");
    if (!tiles.length) return;
    focus = Math.max(0, Math.min(tiles.length - 1, i));
    tiles.forEach((t, k) => t.classList.toggle("amui-focus", k === focus));
    if (scroll && tiles[focus].scrollIntoView) tiles[focus].scrollIntoView({ block: "nearest" });
  }

  function columns() {
    const tiles = grid.querySelectorAll(".amui-tile");
    if (tiles.length < 2) return 1;
    const top = tiles[0].offsetTop;
    let n = 0;
    for (const t of tiles) { if (t.offsetTop !== top) break; n += 1; }
    return Math.max(1, n);
  }

  function nextUnlabelled(from) {
    const tiles = state ? state.tiles : [];
    for (let k = from + 1; k < tiles.length; k++) if (!tiles[k].label) return k;
    return Math.min(from + 1, tiles.length - 1);
  }

  function labelFocused(word) {
    if (!state || !state.tiles.length) return;
    const tile = state.tiles[focus];
    label(tile.id, word);
    setFocus(nextUnlabelled(focus));
  }

  // the other objects of the tile's system (fragments, close neighbours), folded away
  function membersEl(t) {
    const members = t.members || [];
    if (!members.length) return null;
    const items = members.map((m) => h("li", { "data-testid": "member", "data-id": m.id },
      h("span", { class: "amui-mid", text: m.id }), ` ${fmtScore(m.score)}`,
      m.label ? h("span", { class: "amui-mlabel", text: ` ${m.label}` }) : null));
    return h("details", { class: "amui-members", "data-testid": "members", onclick: (ev) => ev.stopPropagation() },
      h("summary", { text: `${members.length} more in this system` }),
      h("ul", {}, ...items));
  }

  function tileEl(t, i) {
    const src = t.image || images.get(t.id);
    const mark = t.label ? { anomaly: "ANOMALY", normal: "NORMAL", skip: "SKIPPED" }[t.label] : null;
    const links = Object.entries(t.links || {}).map(([name, url]) =>
      h("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: name }));
    const img = src
      ? h("img", { src, alt: t.id, class: "amui-img", draggable: "false" })
      : h("div", { class: "amui-img amui-noimg", text: t.error || "no image" });
    const btn = (word, key) => h("button", {
      class: `amui-b amui-b-${word}`, "data-testid": `${word}-${t.id}`, title: `${word} (${key})`,
      text: `${word} (${key})`, onclick: (ev) => { ev.stopPropagation(); setFocus(i, false); label(t.id, word); },
    });
    const similar = h("button", {
      class: "amui-b amui-b-similar", title: "show objects like this one",
      text: "more like this",
      onclick: (ev) => { ev.stopPropagation(); send({ action: "strategy", strategy: "similar", like: t.id }); },
    });
    const tile = h("div", {
      class: `amui-tile${t.label ? " amui-l-" + t.label : ""}${t.error ? " amui-bad" : ""}`,
      "data-testid": "tile", "data-id": t.id, "data-label": t.label || "",
      onclick: () => { setFocus(i, false); root.focus({ preventScroll: true }); },
    },
      h("div", { class: "amui-head" },
        h("span", { class: "amui-rank", text: t.rank ? `#${t.rank}` : "" }),
        h("span", { class: "amui-score", text: fmtScore(t.score) }),
        t.n_members ? h("span", {
          class: "amui-nmem", "data-testid": "n-members",
          title: `${t.n_members} more object(s) in this system`, text: `+${t.n_members}`,
        }) : null,
        mark ? h("span", { class: "amui-mark", "data-testid": "mark", text: mark }) : null),
      img,
      h("div", { class: "amui-id", text: t.id, title: t.id }),
      t.ra !== null && t.ra !== undefined
        ? h("div", { class: "amui-coord", text: `RA ${t.ra.toFixed(5)} Dec ${t.dec >= 0 ? "+" : ""}${t.dec.toFixed(5)}` })
        : null,
      links.length ? h("div", { class: "amui-links" }, ...links) : null,
      membersEl(t),
      t.error ? h("div", { class: "amui-tile-error", text: t.error }) : null,
      h("div", { class: "amui-buttons" }, btn("anomaly", "a"), btn("normal", "n"), btn("skip", "s"), similar));
    return tile;
  }

  function startTimer() {
    if (timer) return;
    timer = setInterval(() => {
      if (!state || !state.training) return;
      state.training.elapsed = (state.training.elapsed || 0) + 0.5;
      drawProgress();
      if (transport.poll) transport.poll();
    }, 500);
  }

  function stopTimer() {
    if (timer) clearInterval(timer);
    timer = null;
  }

  function drawProgress() {
    const tr = state && state.training;
    progress.hidden = !tr;
    retrainBtn.disabled = !!tr;
    if (tr) {
      progress.querySelector(".amui-progress-text").textContent =
        `training (${tr.mode}) \u2026 ${Number(tr.elapsed || 0).toFixed(1)} s`;
    }
  }

  function draw(s) {
    // every state answers the latest action: its error (or none) replaces the one shown
    err.hidden = !s.error;
    err.textContent = s.error || "";
    if (s.images) {
      images.clear();
      for (const t of s.tiles) if (t.image) images.set(t.id, t.image);
      imageVersion = s.version;
      if (s.histogram) histogram = s.histogram;
    } else if (s.version !== imageVersion) {
      // the page changed since our images: ask for a full state
      state = s;
      transport.send({ action: "state" });
      return;
    }
    const prevIds = state ? state.tiles.map((t) => t.id).join("|") : "";
    state = s;
    options(strategySel, s.strategies, s.strategy);
    options(viewSel, s.views, s.view, (v) => (v.startsWith("band:") ? `band ${v.slice(5)}` : v));
    options(stretchSel, s.stretches, s.stretch);
    options(modeSel, s.modes, s.mode);
    stretchSel.disabled = s.view === "lupton";
    prevBtn.disabled = s.page === 0;
    nextBtn.disabled = !s.more;
    undoBtn.disabled = !s.can_undo;
    const first = s.page * s.page_size + 1;
    pageInfo.textContent = s.tiles.length
      ? `page ${s.page + 1} (${first}\u2013${first + s.tiles.length - 1})` : `page ${s.page + 1}`;
    const c = s.counts;
    counts.textContent = `${c.anomaly} anomalies \u00b7 ${c.normal} normals \u00b7 ${c.total} objects \u00b7 cycle ${s.cycle}`;
    let text = s.message || "";
    if (!s.scored && !text) text = "Not trained yet: objects are shown in file order. Label a few of each class, then Retrain.";
    if (s.last_train && !text) text = `last training: ${s.last_train.mode}, ${s.last_train.seconds.toFixed(1)} s, cycle ${s.last_train.cycle}`;
    msg.textContent = text;
    if (histogram) hist.src = histogram;
    grid.replaceChildren(...s.tiles.map(tileEl));
    if (!s.tiles.length) grid.append(h("div", { class: "amui-empty", "data-testid": "empty", text: s.message || "no candidates" }));
    const ids = s.tiles.map((t) => t.id).join("|");
    setFocus(ids === prevIds ? focus : 0, false);
    drawProgress();
    if (s.training) startTimer(); else stopTimer();
  }

  function onKey(ev) {
    const tag = ev.target && ev.target.tagName;
    if (tag === "SELECT" || tag === "INPUT" || tag === "TEXTAREA") return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const cols = columns();
    const handlers = {
      a: () => labelFocused("anomaly"),
      n: () => labelFocused("normal"),
      s: () => labelFocused("skip"),
      u: () => send({ action: "undo" }),
      r: () => { if (!(state && state.training)) send({ action: "retrain", mode: modeSel.value }); },
      "[": () => { if (state && state.page > 0) send({ action: "page", page: state.page - 1 }); },
      "]": () => { if (state && state.more) send({ action: "page", page: state.page + 1 }); },
      ArrowLeft: () => setFocus(focus - 1),
      ArrowRight: () => setFocus(focus + 1),
      ArrowUp: () => setFocus(focus - cols),
      ArrowDown: () => setFocus(focus + cols),
    };
    const fn = handlers[ev.key];
    if (!fn) return;
    ev.preventDefault();
    ev.stopPropagation();
    fn();
  }

  root.addEventListener("keydown", onKey);
  strategySel.addEventListener("change", () => {
    if (strategySel.value === "similar") {
      const t = state && state.tiles[focus];
      send({ action: "strategy", strategy: "similar", like: t ? t.id : null });
    } else send({ action: "strategy", strategy: strategySel.value });
  });
  viewSel.addEventListener("change", () => send({ action: "view", view: viewSel.value }));
  stretchSel.addEventListener("change", () => send({ action: "stretch", stretch: stretchSel.value }));
  modeSel.addEventListener("change", () => send({ action: "mode", mode: modeSel.value }));
  prevBtn.addEventListener("click", () => send({ action: "page", page: state.page - 1 }));
  nextBtn.addEventListener("click", () => send({ action: "page", page: state.page + 1 }));
  undoBtn.addEventListener("click", () => send({ action: "undo" }));
  refreshBtn.addEventListener("click", () => send({ action: "refresh" }));
  retrainBtn.addEventListener("click", () => send({ action: "retrain", mode: modeSel.value }));

  transport.listen((s) => {
    pending = false;
    root.classList.remove("amui-busy");
    draw(s);
    root.dataset.version = String(s.version);
    root.dataset.ready = "true";
  });
  transport.send({ action: "state" });
  return () => { stopTimer(); root.removeEventListener("keydown", onKey); el.replaceChildren(); };
}

// Transport for the standalone server: POST /api/action as JSON with the token header
// (the server refuses a POST without both: no other page can post through our cookie).
export function httpTransport(base, token) {
  let listener = null;
  let chain = Promise.resolve();
  async function post(action) {
    const resp = await fetch(`${base}api/action`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "X-AnomalyMatch-Token": token,
        "X-Requested-With": "anomalymatch-astro",
      },
      body: JSON.stringify(action),
      credentials: "same-origin",
      cache: "no-store",
    });
    if (!resp.ok) {
      let detail = resp.statusText;
      try { detail = (await resp.json()).error || detail; } catch (e) { /* not JSON */ }
      throw new Error(`${resp.status} ${detail}`);
    }
    return resp.json();
  }
  function run(action) {
    // one request at a time, in order
    chain = chain.then(() => post(action)).then((s) => listener && listener(s)).catch((e) => {
      if (listener) listener({ __transport_error: String(e) });
    });
  }
  return {
    send: run,
    poll: () => run({ action: "status" }),
    listen: (cb) => {
      listener = (s) => {
        if (s.__transport_error) {
          const box = document.querySelector("[data-testid=error]");
          if (box) { box.hidden = false; box.textContent = `lost contact with the server: ${s.__transport_error}`; }
          return;
        }
        cb(s);
      };
    },
  };
}

// anywidget entry point.
function render({ model, el }) {
  let listener = null;
  const onMsg = (msg) => {
    if (msg && msg.type === "state" && listener) listener(msg.state);
  };
  model.on("msg:custom", onMsg);
  const cleanup = mount(el, {
    send: (action) => model.send(action),
    poll: null,
    listen: (cb) => { listener = cb; },
  });
  return () => { model.off("msg:custom", onMsg); cleanup(); };
}

export default { render };
