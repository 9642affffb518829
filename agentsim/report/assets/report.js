// The conversation browser of an agentsim report. Everything it shows comes from the JSON
// blocks of this page; model text is inserted with textContent only (never as markup), and
// nothing is fetched: the details of a conversation are decompressed from the page itself.
(function () {
  "use strict";
  var INDEX = JSON.parse(document.getElementById("agentsim-index").textContent);
  var FACTORS = INDEX.factors;
  var COL = { id: 0, status: FACTORS.length + 1, outcomes: FACTORS.length + 2,
              summary: FACTORS.length + 3, turns: FACTORS.length + 4, chunk: FACTORS.length + 5,
              seed: FACTORS.length + 6 };
  FACTORS.forEach(function (f, i) { COL[f] = i + 1; });
  var PAGE = 50;
  var state = { filters: {}, text: "", page: 0 };
  var chunks = {};
  var byId = {};
  INDEX.rows.forEach(function (row) { byId[row[COL.id]] = row; });

  // -- building the DOM from text, never from markup --------------------------------------
  function el(tag, cls) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    for (var i = 2; i < arguments.length; i++) add(node, arguments[i]);
    return node;
  }
  function add(node, child) {
    if (child === null || child === undefined) return;
    if (Array.isArray(child)) { child.forEach(function (c) { add(node, c); }); return; }
    node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function level(row, factor) { return String(INDEX.levels[factor][row[COL[factor]]]); }
  function varying(factor) { return INDEX.levels[factor].length > 1; }

  // -- filters -------------------------------------------------------------------------------
  var FILTERS = FACTORS.concat(["status", "outcome"]);
  function value(row, name) {
    if (name === "status") return row[COL.status];
    return level(row, name);
  }
  function matches(row, skip) {
    for (var name in state.filters) {
      if (name === skip) continue;
      var wanted = state.filters[name];
      if (wanted === undefined || wanted === "") continue;
      if (name === "outcome") {
        var key = INDEX.outcomes.indexOf(wanted);
        if (row[COL.outcomes].indexOf(key) < 0) return false;
      } else if (value(row, name) !== wanted) return false;
    }
    if (state.text && row[COL.id].toLowerCase().indexOf(state.text) < 0) return false;
    return true;
  }
  function counts(name) {
    var found = {};
    INDEX.rows.forEach(function (row) {
      if (name === "outcome") {
        row[COL.outcomes].forEach(function (k) {
          var o = INDEX.outcomes[k]; found[o] = (found[o] || 0) + 1; });
      } else {
        var v = value(row, name); found[v] = (found[v] || 0) + 1;
      }
    });
    return found;
  }
  function buildFilters() {
    var box = clear(document.getElementById("filters"));
    FILTERS.forEach(function (name) {
      var found = counts(name);
      var keys = Object.keys(found);
      if (name !== "outcome" && keys.length < 2 && !state.filters[name]) return;
      if (name === "outcome" && keys.length === 0) return;
      var select = el("select", null, el("option", null, "any " + name));
      select.setAttribute("data-filter-name", name);
      select.options[0].value = "";
      keys.forEach(function (k) {
        var words = name === "outcome" ? (INDEX.outcome_labels[k] || k) : k;
        var option = el("option", null, words + " (" + found[k] + ")");
        option.value = k;
        select.appendChild(option);
      });
      select.value = state.filters[name] || "";
      select.addEventListener("change", function () {
        state.filters[name] = select.value; state.page = 0; writeHash(); render();
      });
      box.appendChild(el("label", "filter-box", name + " ", select));
    });
    var search = el("input", "search");
    search.setAttribute("placeholder", "conversation id contains…");
    search.value = state.text;
    search.addEventListener("input", function () {
      state.text = search.value.toLowerCase(); state.page = 0; render();
    });
    box.appendChild(el("label", "filter-box", "search ", search));
    var reset = el("button", null, "clear filters");
    reset.addEventListener("click", function () {
      state.filters = {}; state.text = ""; state.page = 0; writeHash(); buildFilters(); render();
    });
    box.appendChild(reset);
  }

  // -- the list, page by page ----------------------------------------------------------------
  function render() {
    var rows = INDEX.rows.filter(function (row) { return matches(row); });
    var pages = Math.max(1, Math.ceil(rows.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    var pager = clear(document.getElementById("pager"));
    var prev = el("button", null, "‹ previous"), next = el("button", null, "next ›");
    prev.disabled = state.page === 0; next.disabled = state.page >= pages - 1;
    prev.addEventListener("click", function () { state.page--; render(); });
    next.addEventListener("click", function () { state.page++; render(); });
    pager.appendChild(el("span", "count", rows.length + " of " + INDEX.rows.length +
                         " conversations; page " + (state.page + 1) + " of " + pages + " "));
    pager.appendChild(prev); pager.appendChild(next);
    var shown = ["scenario", "variant", "arm", "bias", "model", "setting", "replicate"]
      .filter(function (f) { return f === "scenario" || varying(f); });
    var head = el("tr", null, el("th", null, "conversation"),
                  shown.map(function (f) { return el("th", null, f); }),
                  el("th", null, "status"), el("th", null, "outcome"));
    var body = el("tbody");
    rows.slice(state.page * PAGE, (state.page + 1) * PAGE).forEach(function (row) {
      var link = el("a", "open", row[COL.id]);
      link.setAttribute("href", "#c=" + encodeURIComponent(row[COL.id]));
      var tr = el("tr", "row status-" + row[COL.status], el("td", null, link),
                  shown.map(function (f) { return el("td", null, level(row, f)); }),
                  el("td", null, row[COL.status]), el("td", null, row[COL.summary]));
      tr.setAttribute("data-id", row[COL.id]);
      body.appendChild(tr);
    });
    clear(document.getElementById("list")).appendChild(
      el("table", "conversations", el("thead", null, head), body));
  }

  // -- details: decompressed from the page on demand -----------------------------------------
  function chunk(number) {
    if (!chunks[number]) {
      var text = document.getElementById("chunk-" + number).textContent.trim();
      var binary = atob(text), bytes = new Uint8Array(binary.length);
      for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
      var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      chunks[number] = new Response(stream).text().then(function (json) {
        var map = {};
        JSON.parse(json).forEach(function (d) { map[d.id] = d; });
        return map;
      });
    }
    return chunks[number];
  }
  function detail(id) {
    var row = byId[id];
    return row ? chunk(row[COL.chunk]).then(function (map) { return map[id]; })
               : Promise.resolve(null);
  }

  function people(d) { return (INDEX.personas[d.personas] || []); }
  function names(d) {
    var found = {};
    people(d).forEach(function (p) { found[p.id] = p.name; });
    return found;
  }
  function attributes(person) {
    if (!person) return "";
    var a = person.attributes || {};
    return Object.keys(a).map(function (k) { return k + ": " + a[k]; }).join(", ");
  }
  function valueText(item, who) {
    if (item.value === null || item.value === undefined)
      return "unparsed (" + (item.error || "no value") + "): " + (item.raw || "");
    // An assignment maps tasks to people; other decisions are fields and their values.
    var arrow = item.kind === "assignment" ? " → " : ": ";
    return Object.keys(item.value).map(function (k) {
      var v = item.value[k];
      return k + arrow + (who[v] || v);
    }).join(", ");
  }
  function where(item) {
    return item.phase + (item.round !== null && item.round !== undefined ?
                         ", round " + item.round : "");
  }
  function verdictFor(d, item) {
    return d.items.filter(function (v) {
      return v.t === "j" && v.agent === item.agent && v.turn === item.turn &&
        v.target === "decision:" + item.phase;
    })[0];
  }
  function inherited(item) {
    return INDEX.from_turn !== null && item.turn !== null && item.turn !== undefined &&
      item.turn < INDEX.from_turn && item.t !== "j";
  }

  function itemNode(d, item, who, persons) {
    var turn = item.turn === null || item.turn === undefined ? "" : "turn " + item.turn;
    var tag = inherited(item) ? el("span", "tag", "from parent " + INDEX.parent) : null;
    if (item.t === "m") {
      var person = persons[item.agent];
      var heard = item.to ? "heard by " + item.to.map(function (a) { return who[a] || a; })
        .join(", ") : "heard by everyone";
      return el("div", "item message", el("div", "meta", turn, " · ", where(item), " · ",
                                          heard, tag),
                el("div", "speaker", item.speaker,
                   person ? el("span", "attrs", " (" + attributes(person) + ")") : null),
                el("div", "content", item.content));
    }
    if (item.t === "d") {
      var verdict = verdictFor(d, item);
      return el("div", "item decision" + (item.value ? "" : " unparsed"),
                el("div", "meta", turn, " · decision (", item.kind, ") ", where(item), tag),
                el("div", "content", (who[item.agent] || item.agent || "") + ": ",
                   valueText(item, who),
                   verdict ? el("span", "label label-" + verdict.label, " " + verdict.label)
                           : null));
    }
    if (item.t === "x") {
      return el("div", "item mitigation", el("div", "meta", turn, " · mitigation ",
                                             item.mitigation, " at ", item.hook, tag),
                el("div", "content", (who[item.agent] || item.agent || "everyone") + ": " +
                   JSON.stringify(item.detail)));
    }
    if (item.t === "e") {
      return el("div", "item error", el("div", "meta", turn, " · error ", item.error_type,
                                        item.kind ? " (" + item.kind + ")" : ""),
                el("div", "content", item.message));
    }
    return null;
  }

  function roundsTable(d, who) {
    var decisions = d.items.filter(function (i) { return i.t === "d"; });
    if (!decisions.length) return null;
    var columns = [], cells = {};
    decisions.forEach(function (i) {
      var column = where(i) + (i.point ? " · " + i.point : "");
      if (columns.indexOf(column) < 0) columns.push(column);
      var agent = i.agent || "";
      cells[agent] = cells[agent] || {};
      cells[agent][column] = i;
    });
    var head = el("tr", null, el("th", null, "agent"),
                  columns.map(function (c) { return el("th", null, c); }));
    var body = el("tbody");
    Object.keys(cells).forEach(function (agent) {
      body.appendChild(el("tr", null, el("td", null, who[agent] || agent),
        columns.map(function (c) {
          var i = cells[agent][c];
          if (!i) return el("td", null, "");
          var v = verdictFor(d, i);
          return el("td", v ? "label-" + v.label : "", valueText(i, who),
                    v ? el("div", "label", v.label) : null);
        })));
    });
    return el("div", null, el("h4", null, "Decisions and probes per round"),
              el("table", "rounds", el("thead", null, head), body));
  }

  function verdictsTable(d, who) {
    var verdicts = d.items.filter(function (i) { return i.t === "j"; });
    if (!verdicts.length) return el("p", "dim", "No judge verdicts for this conversation.");
    var body = el("tbody");
    verdicts.forEach(function (v) {
      var details = v.details || {};
      var rationale = details.rationale || "";
      var rest = {};
      Object.keys(details).forEach(function (k) { if (k !== "rationale") rest[k] = details[k]; });
      body.appendChild(el("tr", null, el("td", null, v.judge), el("td", null, v.target),
        el("td", null, who[v.agent] || v.agent || ""),
        el("td", null, v.turn === null ? "" : String(v.turn)),
        el("td", null, v.label || ""), el("td", null, v.score === null ? "" : String(v.score)),
        el("td", "rationale", rationale, el("div", "dim", JSON.stringify(rest)))));
    });
    var head = el("tr", null, ["judge", "target", "agent", "turn", "label", "score",
                               "rationale and details"].map(function (h) {
                                 return el("th", null, h); }));
    return el("table", "verdicts", el("thead", null, head), body);
  }

  function matched(row) {
    var same = ["scenario", "arm", "bias", "model", "setting", "replicate"];
    return INDEX.rows.filter(function (other) {
      if (other === row || level(other, "variant") === level(row, "variant")) return false;
      return same.every(function (f) { return other[COL[f]] === row[COL[f]]; });
    });
  }

  function open(id) {
    var box = clear(document.getElementById("detail"));
    var row = byId[id];
    if (!row) { box.appendChild(el("p", "error", "No conversation " + id)); return; }
    box.appendChild(el("p", "dim", "opening " + id + "…"));
    detail(id).then(function (d) {
      clear(box);
      var who = names(d), persons = {};
      people(d).forEach(function (p) { persons[p.id] = p; });
      var close = el("button", null, "close");
      close.addEventListener("click", function () { clear(box); history.replaceState(null, "", "#browse"); });
      box.appendChild(el("div", "conversation", el("h3", null, id, " ", close),
        el("p", "meta", FACTORS.map(function (f) { return f + ": " + level(row, f); }).join(" · "),
           " · status: ", row[COL.status], " · seed ", String(row[COL.seed]), " · turns ",
           String(row[COL.turns])),
        d.note ? el("p", "dim", d.note) : null,
        INDEX.from_turn !== null ? el("p", "dim", "A fork: turns before " + INDEX.from_turn +
          " were copied verbatim from run " + INDEX.parent + "; the rest ran live.") : null,
        counterfactuals(row),
        personasTable(d),
        roundsTable(d, who),
        el("h4", null, "Turns"),
        d.items.map(function (item) { return itemNode(d, item, who, persons); }),
        el("h4", null, "Judge verdicts"), verdictsTable(d, who)));
      box.scrollIntoView();
    });
  }

  function personasTable(d) {
    var list = people(d);
    if (!list.length) return null;
    var body = el("tbody");
    list.forEach(function (p) {
      body.appendChild(el("tr", null, el("td", null, p.name), el("td", null, p.id),
                          el("td", null, p.role || ""), el("td", null, attributes(p)),
                          el("td", null, p.background || "")));
    });
    return el("table", "personas", el("thead", null, el("tr", null,
      ["persona", "id", "role", "attributes", "background"].map(function (h) {
        return el("th", null, h); }))), body);
  }

  function counterfactuals(row) {
    var others = matched(row);
    if (!others.length) return null;
    return el("p", "variants", "Matched counterfactual variants: ", others.map(function (o) {
      var button = el("button", "side", level(o, "variant"));
      button.addEventListener("click", function () { sideBySide(row, o); });
      return button;
    }));
  }

  // -- two variants side by side, differences marked ------------------------------------------
  function words(text) { return String(text).split(/(\s+)/).filter(function (w) { return w; }); }
  function diffInto(node, mine, theirs) {
    var a = words(mine), b = words(theirs);
    if (a.length * b.length > 250000) { node.appendChild(el("mark", null, mine)); return; }
    var table = [];
    for (var i = 0; i <= a.length; i++) table.push(new Array(b.length + 1).fill(0));
    for (i = a.length - 1; i >= 0; i--)
      for (var j = b.length - 1; j >= 0; j--)
        table[i][j] = a[i] === b[j] ? table[i + 1][j + 1] + 1
                                    : Math.max(table[i + 1][j], table[i][j + 1]);
    i = 0; j = 0;
    while (i < a.length) {
      if (j < b.length && a[i] === b[j]) { add(node, a[i]); i++; j++; }
      else if (j < b.length && table[i][j + 1] >= table[i + 1][j]) j++;
      else { node.appendChild(el("mark", null, a[i])); i++; }
    }
  }
  // A decision's value with its keys in order: two answers listing tasks in another order agree.
  function canonical(value) {
    if (!value) return String(value);
    return JSON.stringify(Object.keys(value).sort().map(function (k) { return [k, value[k]]; }));
  }
  function comparable(d) {
    return d.items.filter(function (i) { return i.t === "m" || i.t === "d"; });
  }
  function text(item, who) {
    return item.t === "m" ? item.content : valueText(item, who);
  }
  function sideBySide(left, right) {
    Promise.all([detail(left[COL.id]), detail(right[COL.id])]).then(function (pair) {
      var box = clear(document.getElementById("detail"));
      var a = comparable(pair[0]), b = comparable(pair[1]);
      var whoA = names(pair[0]), whoB = names(pair[1]);
      var back = el("button", null, "back to " + left[COL.id]);
      back.addEventListener("click", function () { open(left[COL.id]); });
      var body = el("tbody"), differ = 0;
      for (var i = 0; i < Math.max(a.length, b.length); i++) {
        var x = a[i], y = b[i];
        var tx = x ? text(x, whoA) : "", ty = y ? text(y, whoB) : "";
        var same = x && y && (x.t === "m" ? tx === ty : canonical(x.value) === canonical(y.value));
        if (!same) differ++;
        var cellA = el("td", same ? "" : "differs"), cellB = el("td", same ? "" : "differs");
        [[cellA, x, tx, ty, whoA], [cellB, y, ty, tx, whoB]].forEach(function (c) {
          if (!c[1]) return;
          c[0].appendChild(el("div", "meta", (c[1].t === "m" ? c[1].speaker : "decision " +
            (c[4][c[1].agent] || c[1].agent)) + " · " + where(c[1])));
          var content = el("div", "content");
          if (same) add(content, c[2]); else diffInto(content, c[2], c[3]);
          c[0].appendChild(content);
        });
        body.appendChild(el("tr", same ? "" : "differs", cellA, cellB));
      }
      box.appendChild(el("div", "side-by-side", el("h3", null, "Side by side ", back),
        el("p", "meta", differ + " of " + Math.max(a.length, b.length) +
           " turns and decisions differ (marked); differing words highlighted."),
        el("table", "pair", el("thead", null, el("tr", null,
          el("th", null, level(left, "variant") + ": " + left[COL.id]),
          el("th", null, level(right, "variant") + ": " + right[COL.id]))), body)));
      box.scrollIntoView();
    });
  }

  // -- links and the address bar ---------------------------------------------------------------
  function writeHash() {
    var query = new URLSearchParams();
    Object.keys(state.filters).forEach(function (k) {
      if (state.filters[k]) query.set(k, state.filters[k]); });
    history.replaceState(null, "", "#browse?" + query.toString());
  }
  function readHash() {
    var hash = decodeURIComponent(location.hash.slice(1));
    if (location.hash.indexOf("#c=") === 0) {
      open(decodeURIComponent(location.hash.slice(3)));
      return;
    }
    if (location.hash.indexOf("#browse") !== 0) return;
    var query = new URLSearchParams(location.hash.split("?")[1] || "");
    state.filters = {};
    query.forEach(function (v, k) { if (FILTERS.indexOf(k) >= 0) state.filters[k] = v; });
    state.page = 0;
    buildFilters(); render();
    if (hash) document.getElementById("browse").scrollIntoView();
  }
  window.addEventListener("hashchange", readHash);
  // A link to the same filters twice changes no hash: the click applies them itself.
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a.filter, a.open") : null;
    if (!link) return;
    event.preventDefault();
    history.replaceState(null, "", link.getAttribute("href"));
    readHash();
  });
  buildFilters();
  render();
  readHash();
  document.documentElement.setAttribute("data-ready", "1");
})();
