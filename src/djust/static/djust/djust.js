/* djust client: socket, events, morph, uploads.
 * One file, no dependencies, no build step. The wire protocol is docs/protocol.md. */
(function () {
  "use strict";

  const script = document.currentScript;
  const WS_PATH = (script && script.getAttribute("data-djust-ws")) || "/djust/ws/";
  const HEADER_SIZE = 13; // binary frame header: type u8, ref u32, offset u64
  // The socket cannot go on: stop reconnecting. Those in RELOAD_CODES reload the page over HTTP
  // (which shows the login page, the 403, a fresh token), at most once per RELOAD_INTERVAL so
  // that a page the socket keeps refusing never reloads in a loop.
  const FATAL_CODES = new Set([
    "bad_token",
    "expired_token",
    "access_denied",
    "session_ended",
    "mount_failed",
  ]);
  const RELOAD_CODES = new Set(["expired_token", "access_denied", "session_ended", "mount_failed"]);
  const RELOAD_INTERVAL = 30000;
  const RELOAD_KEY = "djust:reloaded:" + location.pathname;
  // Liveness while an upload waits for its ack (docs/uploads.md, "Liveness"): a link that died
  // without a close (a laptop that slept, a new network, a proxy that stalls) shows only as
  // silence. A ping after PING_AFTER of it; after ACK_TIMEOUT the socket is given up and the
  // client reconnects and resumes. window.djustConfig = {ackTimeout: ms} shortens both (tests).
  const ACK_TIMEOUT = 15000;
  const PING_AFTER = 5000;

  // A page that is already leaving (the form that logs out, a link) is not reloaded over it.
  // Only for a moment: a "navigation" that was a download leaves the page where it is.
  let leftAt = -Infinity;
  window.addEventListener("pagehide", () => (leftAt = Date.now()));
  window.addEventListener("beforeunload", () => (leftAt = Date.now()));

  function reloadOnce() {
    if (Date.now() - leftAt < 3000) return false;
    let last = 0;
    try {
      last = Number(sessionStorage.getItem(RELOAD_KEY)) || 0;
      if (Date.now() - last < RELOAD_INTERVAL) return false;
      sessionStorage.setItem(RELOAD_KEY, String(Date.now()));
    } catch (e) {
      return false; // no storage: never risk a loop
    }
    location.reload();
    return true;
  }

  function emit(name, detail) {
    window.dispatchEvent(new CustomEvent(name, { detail: detail }));
  }

  /* ---------------------------------------------------------------- socket */

  class Live {
    constructor(root) {
      this.root = root;
      this.token = root.getAttribute("dj-view");
      this.nextId = 1;
      this.replies = new Map();
      this.queue = [];
      this.attempt = 0;
      this.mounted = false;
      this.everMounted = false;
      this.stopped = false;
      const config = window.djustConfig || {};
      this.ackTimeout = Number(config.ackTimeout) > 0 ? Number(config.ackTimeout) : ACK_TIMEOUT;
      this.pingAfter = Math.min(PING_AFTER, this.ackTimeout / 3);
      this.heard = 0; // when the server last said anything
      this.pinged = 0;
      this.watching = null;
      this.uploads = new Uploads(this);
      this.connect();
    }

    connect() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const ws = new WebSocket(scheme + location.host + WS_PATH);
      ws.binaryType = "arraybuffer";
      ws.onopen = () => {
        const mount = { t: "mount", token: this.token };
        // permessage-deflate compresses every file byte: the server logs how to turn it off.
        if (/permessage-deflate/.test(ws.extensions)) mount.deflate = true;
        ws.send(JSON.stringify(mount));
      };
      ws.onmessage = (e) => {
        this.heard = Date.now();
        this.receive(JSON.parse(e.data));
      };
      ws.onclose = () => this.closed(ws);
      this.ws = ws;
    }

    closed(ws) {
      if (ws !== this.ws) return;
      const was = this.mounted;
      this.mounted = false;
      clearTimeout(this.watching);
      this.watching = null;
      this.uploads.disconnected(this.stopped);
      markConnected(this.root, false);
      this.replies.forEach((resolve) => resolve(null));
      this.replies.clear();
      if (was) emit("djust:disconnected", {});
      if (this.stopped) return;
      // Exponential backoff with jitter, so a restarted server is not hit by every tab at once.
      const delay = Math.min(5000, 100 * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
      setTimeout(() => this.connect(), delay);
    }

    send(message) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(JSON.stringify(message));
        return true;
      }
      return false;
    }

    sendBinary(data) {
      this.ws.send(data);
      this.watch();
    }

    // While an upload waits for an ack, the server's silence is timed: a ping once it lasts
    // pingAfter, and past ackTimeout the socket is given up. Any message resets the clock. The
    // timer only watches: uploads are paced by acks and promises, never by timers (which
    // browsers slow down in background tabs).
    watch() {
      if (this.watching) return;
      const started = Date.now(); // a server quiet before the upload waited is not silent
      const check = () => {
        this.watching = null;
        if (!this.mounted || !this.uploads.waiting()) return;
        if (this.replies.size > 0) {
          // The server answers one message at a time: it is running a handler this page
          // waits for, and chunks and pings wait behind it. That silence is no dead link.
          this.watching = setTimeout(check, this.pingAfter);
          return;
        }
        const last = Math.max(this.heard, started);
        const silent = Date.now() - last;
        if (silent >= this.ackTimeout) {
          console.warn("djust: no answer from the server for " + silent + " ms; reconnecting");
          this.abandon();
          return;
        }
        if (silent >= this.pingAfter && this.pinged < last) {
          this.pinged = Date.now();
          this.send({ t: "ping", id: this.nextId++ });
        }
        const next = silent < this.pingAfter ? this.pingAfter - silent : this.ackTimeout - silent;
        this.watching = setTimeout(check, next);
      };
      this.watching = setTimeout(check, this.pingAfter);
    }

    // A socket that went silent is closed and treated as closed at once: its close event could
    // take a minute (the closing handshake waits for a peer that no longer answers).
    abandon() {
      const ws = this.ws;
      ws.onmessage = null;
      ws.onclose = null;
      ws.close();
      this.closed(ws);
    }

    pushEvent(name, params) {
      const message = { t: "event", id: this.nextId++, name: name, params: params };
      if (!this.mounted && (this.everMounted || this.stopped)) {
        // After a disconnect the server mounts a fresh view: an event aimed at the old one is
        // not replayed against it. The user sees the page is offline and can act again.
        const error = { t: "error", code: "disconnected", message: "not connected; try again" };
        emit("djust:error", { code: error.code, message: error.message, event: name });
        return Promise.resolve(error);
      }
      return new Promise((resolve) => {
        this.replies.set(message.id, resolve);
        if (this.mounted) this.send(message);
        else this.queue.push(message); // the first mount: the page the user sees is its state
      });
    }

    receive(m) {
      switch (m.t) {
        case "mounted":
          this.mounted = true;
          this.everMounted = true;
          this.attempt = 0;
          if (m.strings) this.strings = m.strings; // translated texts for t() (uploads section)
          this.uploads.configure(m.uploads);
          if (m.max_concurrent_uploads) {
            this.uploads.maxStreaming = Math.min(MAX_STREAMING, m.max_concurrent_uploads);
          }
          if (m.max_frame_size) this.uploads.maxFrame = m.max_frame_size;
          // Under DEBUG, what slows this socket down and how to fix it (once per page).
          if (m.warning && m.warning !== this.warning) console.warn("djust: " + m.warning);
          this.warning = m.warning;
          morph(this.root, m.html);
          this.uploads.bind();
          this.uploads.connected();
          this.uploads.schedule();
          markConnected(this.root, true);
          waitForUploads(this);
          this.queue.splice(0).forEach((q) => this.send(q));
          emit("djust:connected", { version: m.v });
          break;
        case "render":
          this.update(m);
          break;
        case "reply": {
          this.update(m);
          const resolve = this.replies.get(m.id);
          this.replies.delete(m.id);
          if (resolve) resolve(m);
          break;
        }
        case "error": {
          emit("djust:error", { code: m.code, message: m.message, id: m.id });
          const resolve = this.replies.get(m.id);
          this.replies.delete(m.id);
          if (resolve) resolve(m);
          if (FATAL_CODES.has(m.code)) {
            this.stopped = true;
            this.ws.close();
            if (RELOAD_CODES.has(m.code)) reloadOnce();
          }
          break;
        }
        case "redirect":
          this.stopped = true;
          location.assign(m.url);
          break;
        case "push_event":
          emit("djust:" + m.name, m.payload);
          break;
        case "pong":
        case "busy": // a handler runs on the server: heard, nothing to do
          break;
        default:
          if (m.t && m.t.startsWith("upload_")) this.uploads.receive(m);
      }
    }

    update(m) {
      if (m.uploads) this.uploads.configure(m.uploads);
      if (m.html !== undefined) {
        morph(this.root, m.html);
        this.uploads.bind();
        waitForUploads(this);
      }
    }
  }

  /* ---------------------------------------------------------------- events */

  function liveFor(el) {
    const root = el.closest("[dj-view]");
    return root && root.__djust;
  }

  function confirmed(el) {
    const text = el.getAttribute("dj-confirm");
    return text === null || window.confirm(text);
  }

  function valuesOf(el) {
    const params = {};
    for (const attr of el.attributes) {
      if (attr.name.startsWith("dj-value-")) params[attr.name.slice(9)] = attr.value;
    }
    return params;
  }

  function formData(form, submitter) {
    if (submitter && submitter.name) {
      try {
        return new FormData(form, submitter); // the button's name and value, in form order
      } catch (e) {
        const data = new FormData(form);
        data.append(submitter.name, submitter.value);
        return data;
      }
    }
    return new FormData(form);
  }

  function formValues(form, submitter) {
    const params = {};
    for (const [name, value] of formData(form, submitter)) {
      if (typeof value !== "string") continue; // files travel as uploads, not as parameters
      if (name in params) params[name] = [].concat(params[name], value);
      else params[name] = value;
    }
    return params;
  }

  function fieldParams(el) {
    if (el.tagName === "FORM") return Object.assign(formValues(el), valuesOf(el));
    const params = valuesOf(el);
    if (el.type === "checkbox" || el.type === "radio") params.value = el.checked ? el.value : "";
    else if (el.type !== "file") params.value = el.value;
    if (el.name && el.type !== "file") params[el.name] = params.value;
    return params;
  }

  // Loading states (docs/django.md, "Loading states"). While an event is in flight, the element
  // that sent it carries the class dj-loading, and each element given with dj-disable-with is
  // disabled and shows that text; its own text and state come back with the reply (or error).
  const LOADING = "dj-loading";

  function loading(el, disabling) {
    el.__djustLoading = (el.__djustLoading || 0) + 1;
    el.__djustClasses = el.__djustClasses || new Set();
    el.__djustClasses.add(LOADING); // kept by the morph of a render that arrives meanwhile
    el.classList.add(LOADING);
    disabling.forEach(lock);
    return () => {
      disabling.forEach(unlock);
      if (--el.__djustLoading > 0) return;
      el.__djustClasses.delete(LOADING);
      el.classList.remove(LOADING);
    };
  }

  // A locked element keeps its "Saving…" while renders arrive: the morph leaves it alone and
  // keeps the server's latest version of it, applied when it is unlocked.
  function lock(el) {
    if (el.__djustLock) {
      el.__djustLock.count += 1;
      return;
    }
    const text = el.getAttribute("dj-disable-with");
    const isInput = el.tagName === "INPUT";
    el.__djustLock = { count: 1, pending: null, nodes: Array.from(el.childNodes), value: el.value };
    if (isInput) el.value = text;
    else el.textContent = text;
    hold(el, "disable-with", true);
  }

  function unlock(el) {
    const locked = el.__djustLock;
    if (!locked || --locked.count > 0) return;
    el.__djustLock = null;
    if (el.tagName === "INPUT") el.value = locked.value;
    else el.replaceChildren(...locked.nodes);
    hold(el, "disable-with", false);
    if (locked.pending) morphNode(el, locked.pending);
  }

  // Elements the client disables for a while, for reasons (dj-disable-with, dj-upload-wait).
  // ``server`` says whether the server's HTML disables the element itself: it is what stays
  // once no reason is left (the morph keeps it up to date).
  function hold(el, reason, on) {
    let held = el.__djustHeld;
    if (!held) {
      if (!on) return;
      held = el.__djustHeld = { reasons: new Set(), server: el.hasAttribute("disabled") };
    }
    if (on) held.reasons.add(reason);
    else held.reasons.delete(reason);
    el.toggleAttribute("disabled", held.reasons.size > 0 || held.server);
    if (!held.reasons.size) el.__djustHeld = null;
  }

  // dj-upload-wait="slot": disabled while files of that slot are on their way to the server
  // (an "Upload All" button that would otherwise consume only the files already complete).
  const ON_THE_WAY = ["queued", "registering", "uploading", "paused"];

  function waitForUploads(live) {
    for (const el of live.root.querySelectorAll("[dj-upload-wait]")) {
      const name = el.getAttribute("dj-upload-wait");
      const busy = Array.from(live.uploads.entries.values()).some(
        (e) => e.uploadName === name && ON_THE_WAY.includes(e.status),
      );
      hold(el, "upload-wait", busy);
    }
  }

  // Every change of an upload's status is reported with this event.
  window.addEventListener("djust:upload:progress", () => {
    for (const root of document.querySelectorAll("[dj-view]")) {
      if (root.__djust) waitForUploads(root.__djust);
    }
  });

  function markConnected(root, connected) {
    root.classList.toggle("dj-connected", connected);
    root.classList.toggle("dj-disconnected", !connected);
  }

  document.addEventListener("click", (e) => {
    const el = e.target.closest && e.target.closest("[dj-click]");
    const live = el && liveFor(el);
    if (!live) return;
    e.preventDefault();
    if (el.__djustLock) return; // its dj-disable-with event is still in flight
    if (!confirmed(el)) return;
    const done = loading(el, el.hasAttribute("dj-disable-with") ? [el] : []);
    live.pushEvent(el.getAttribute("dj-click"), valuesOf(el)).then(done);
  });

  document.addEventListener("submit", (e) => {
    const form = e.target.closest && e.target.closest("form[dj-submit]");
    const live = form && liveFor(form);
    if (!live) return;
    e.preventDefault();
    if (!confirmed(form)) return;
    const params = Object.assign(formValues(form, e.submitter), valuesOf(form));
    const done = loading(form, Array.from(form.querySelectorAll("[dj-disable-with]")));
    // Files chosen with auto_upload off travel first; the event follows once they are in.
    live.uploads
      .flush(form)
      .then(() => live.pushEvent(form.getAttribute("dj-submit"), params))
      .then(done);
  });

  document.addEventListener("change", (e) => {
    const target = e.target;
    const upload = target.closest && target.closest("input[dj-upload]");
    if (upload && liveFor(upload)) {
      liveFor(upload).uploads.select(upload.getAttribute("dj-upload"), upload.files, upload);
    }
    const el = target.closest && target.closest("[dj-change]");
    const live = el && liveFor(el);
    if (!live) return;
    const done = loading(el, []);
    live.pushEvent(el.getAttribute("dj-change"), fieldParams(el)).then(done);
  });

  const debounceTimers = new WeakMap();
  document.addEventListener("input", (e) => {
    const el = e.target.closest && e.target.closest("[dj-input]");
    const live = el && liveFor(el);
    if (!live) return;
    clearTimeout(debounceTimers.get(el));
    const wait = parseInt(el.getAttribute("dj-debounce") || "250", 10);
    debounceTimers.set(
      el,
      setTimeout(() => {
        const done = loading(el, []);
        live.pushEvent(el.getAttribute("dj-input"), fieldParams(el)).then(done);
      }, wait),
    );
  });

  // Files pasted from the clipboard go to the slot of the dj-upload-paste element, or of the
  // dj-upload-drop zone, that has the focus or contains it; pasted text is left alone.
  document.addEventListener("paste", (e) => {
    const files = e.clipboardData && e.clipboardData.files;
    if (!files || !files.length) return;
    const el = e.target.closest && e.target.closest("[dj-upload-paste],[dj-upload-drop]");
    const live = el && liveFor(el);
    if (!live) return;
    e.preventDefault();
    const name = el.getAttribute("dj-upload-paste") || el.getAttribute("dj-upload-drop");
    live.uploads.select(name, files, null);
  });

  // The path of a file below the folder the user chose (an input with webkitdirectory) or
  // dropped; "" for a file chosen on its own. Sent at registration as client_path.
  function relativePath(file) {
    return file.webkitRelativePath || file.__djustPath || "";
  }

  // The files of a drop, with those of dropped folders (read recursively, each given its
  // relative path). The entries must be taken while the drop event runs; they are read later.
  function droppedFiles(transfer) {
    const entries = Array.from(transfer.items || [])
      .filter((item) => item.kind === "file" && item.webkitGetAsEntry)
      .map((item) => item.webkitGetAsEntry())
      .filter(Boolean);
    if (!entries.some((entry) => entry.isDirectory)) return Promise.resolve(Array.from(transfer.files));
    return Promise.all(entries.map(filesOf)).then((lists) => lists.flat());
  }

  function filesOf(entry) {
    if (entry.isFile) {
      return new Promise((resolve) => {
        entry.file(
          (file) => {
            if (entry.fullPath.indexOf("/", 1) > 0) file.__djustPath = entry.fullPath.slice(1);
            resolve([file]);
          },
          () => resolve([]), // unreadable: as if it were not there
        );
      });
    }
    const reader = entry.createReader();
    const children = [];
    // readEntries answers in batches (100 in Chromium) until it answers an empty one.
    const next = () =>
      new Promise((resolve) => reader.readEntries(resolve, () => resolve([]))).then((batch) => {
        if (!batch.length) return Promise.all(children.map(filesOf)).then((l) => l.flat());
        children.push(...batch);
        return next();
      });
    return next();
  }

  /* ----------------------------------------------------------------- morph */

  // Containers whose children the client owns (previews, progress): the server never fills them.
  const CLIENT_OWNED = ["dj-upload-preview", "dj-upload-progress"];
  const KEY_ATTRS = ["id", "dj-key", "dj-upload", "dj-upload-drop"].concat(CLIENT_OWNED);

  function keyOf(node) {
    if (node.nodeType !== 1) return null;
    for (const name of KEY_ATTRS) {
      if (node.hasAttribute(name)) return name + "=" + node.getAttribute(name);
    }
    return null;
  }

  function similar(a, b) {
    if (a.nodeType !== b.nodeType) return false;
    if (a.nodeType !== 1) return true;
    if (a.tagName !== b.tagName || keyOf(a) !== keyOf(b)) return false;
    return a.tagName !== "INPUT" || a.type === (b.getAttribute("type") || "text").toLowerCase();
  }

  function morph(root, html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    morphChildren(root, template.content);
  }

  function morphChildren(from, to) {
    let current = from.firstChild;
    for (const incoming of Array.from(to.childNodes)) {
      const key = keyOf(incoming);
      let match = null;
      if (key) {
        for (let n = current; n; n = n.nextSibling) {
          if (keyOf(n) === key && similar(n, incoming)) {
            match = n;
            break;
          }
        }
      } else if (current && !keyOf(current) && similar(current, incoming)) {
        match = current;
      }
      if (!match) {
        from.insertBefore(incoming, current);
        continue;
      }
      if (match === current) current = current.nextSibling;
      else from.insertBefore(match, current);
      morphNode(match, incoming);
    }
    while (current) {
      const next = current.nextSibling;
      from.removeChild(current);
      current = next;
    }
  }

  function isField(el) {
    return el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT";
  }

  function morphNode(old, incoming) {
    if (old.nodeType !== 1) {
      if (old.nodeValue !== incoming.nodeValue) old.nodeValue = incoming.nodeValue;
      return;
    }
    if (old.hasAttribute("dj-ignore")) return;
    if (old.__djustLock) {
      old.__djustLock.pending = incoming; // applied when its event's reply is in (events)
      return;
    }
    morphAttributes(old, incoming);
    if (old.tagName === "TEXTAREA") {
      // The server's text is the default; what the user typed stays unless the server changed it.
      if (old.defaultValue !== incoming.textContent) {
        old.defaultValue = incoming.textContent;
        if (old !== document.activeElement) old.value = incoming.textContent;
      }
      return;
    }
    if (CLIENT_OWNED.some((name) => old.hasAttribute(name))) return;
    morphChildren(old, incoming);
  }

  function morphAttributes(old, incoming) {
    const focused = old === document.activeElement;
    const owned = old.__djustAttrs || new Set();
    const held = old.__djustHeld; // disabled by the client for now (events)
    if (held) held.server = incoming.hasAttribute("disabled");
    for (const attr of Array.from(incoming.attributes)) {
      if (old.getAttribute(attr.name) === attr.value) continue;
      old.setAttribute(attr.name, attr.value);
      // A changed value attribute means the server changed the value: apply it unless typing.
      if (isField(old) && old.type !== "file" && !focused) {
        if (attr.name === "value") old.value = attr.value;
        if (attr.name === "checked") old.checked = true;
      }
    }
    for (const attr of Array.from(old.attributes)) {
      if (incoming.hasAttribute(attr.name) || owned.has(attr.name)) continue;
      old.removeAttribute(attr.name);
      if (isField(old) && old.type !== "file" && !focused) {
        if (attr.name === "value") old.value = "";
        if (attr.name === "checked") old.checked = false;
      }
    }
    if (old.__djustClasses) old.__djustClasses.forEach((c) => old.classList.add(c));
    if (held) old.toggleAttribute("disabled", true);
  }

  /* --------------------------------------------------------------- uploads */

  // Chunks travel in runs: one message of as many whole chunks as the window and the server's
  // largest message allow (engines pay per WebSocket message: 64 KiB messages carry a third of
  // what 1 MiB ones do). Firefox and Chromium send each run as a Blob of header and file slice:
  // the engine reads the file as it sends, off the page's thread (Firefox: a third of the CPU
  // and twice the speed of ArrayBuffers; docs/performance.md, "Every engine"). A Blob they
  // cannot read any more (the file changed on disk) closes the socket, so the pump first reads
  // the file's last byte itself, where a change shows as a failed read. WebKit sends a Blob of a
  // file cut within the second it was picked padded with zeros: there, and for a file whose
  // Blob runs met two drops, the page reads each run itself and sends an ArrayBuffer. A short or
  // refused read fails that one upload (read_failed).
  const BLOB_RUNS = /(Firefox|Chrome)\/\d/.test(navigator.userAgent); // HeadlessChrome too
  const FRAME_RUN = 0x02;
  const PAINT_EVERY = 250; // ms between two drawings of an uploading file's progress item
  const DEFAULT_MAX_FRAME = 1024 * 1024 + 64;
  const MAX_STREAMING = 3; // per connection, unless the server allows fewer

  // The bytes [start, end) of a picked file, exactly. Read through a Response, which reads short
  // in every engine when the file shrank on disk (WebKit's slice().arrayBuffer() pads a file cut
  // within the second it was picked with zeros); the size and time are checked again first where
  // the engine looks at the disk for them.
  async function readExactly(entry, start, end) {
    unchanged(entry);
    const bytes = await new Response(entry.file.slice(start, end)).arrayBuffer();
    if (bytes.byteLength !== end - start) {
      throw new Error("read " + bytes.byteLength + " of " + (end - start) + " bytes at " + start);
    }
    return bytes;
  }

  // Before each read or Blob run: the size and time the file had when it was picked.
  function unchanged(entry) {
    const file = entry.file;
    if (file.size !== entry.size || file.lastModified !== entry.lastModified) {
      throw new Error("the file's size or modification time changed");
    }
  }

  // Files the server keeps for a while after the page lost them (a reload, a closed tab): picked
  // again on the same page and slot, they continue where the server's bytes end. One list per
  // origin of {path, slot, name, size, modified, token, expires}; each expires with the
  // server's grace period (docs/uploads.md, "Resume").
  const RESUME_KEY = "djust-resume";

  function resumable() {
    try {
      const list = JSON.parse(localStorage.getItem(RESUME_KEY) || "[]");
      const now = Date.now();
      return Array.isArray(list) ? list.filter((r) => r && r.token && r.expires > now) : [];
    } catch (e) {
      return []; // no storage (a policy, a private window): picking again starts over
    }
  }

  function keepResumable(list) {
    try {
      if (list.length) localStorage.setItem(RESUME_KEY, JSON.stringify(list));
      else localStorage.removeItem(RESUME_KEY);
    } catch (e) {
      // Full or refused: uploads still resume over reconnects, only not after a reload.
    }
  }

  function accepts(accept, file) {
    if (!accept) return true;
    const name = file.name.toLowerCase();
    const type = (file.type || "").toLowerCase().split(";")[0].trim();
    return accept.split(",").some((raw) => {
      const token = raw.trim().toLowerCase();
      if (!token) return false;
      if (token.startsWith(".")) return name.endsWith(token);
      if (token === "*/*") return true;
      if (token.endsWith("/*")) return type.startsWith(token.slice(0, -1));
      return type === token;
    });
  }

  // Decimal units, as people write limits ("max 25 MB" is 25,000,000 bytes) and as disks count.
  function formatSize(bytes) {
    if (bytes < 1000) return bytes + " B";
    if (bytes < 1000 * 1000) return (bytes / 1000).toFixed(1) + " KB";
    if (bytes < 1000 * 1000 * 1000) return (bytes / 1000 / 1000).toFixed(1) + " MB";
    return (bytes / 1000 / 1000 / 1000).toFixed(2) + " GB";
  }

  function formatDuration(seconds) {
    const s = Math.max(1, Math.ceil(seconds));
    if (s < 60) return s + " s";
    if (s < 600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    if (s < 3600) return Math.round(s / 60) + " min";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  // The English texts: fallbacks for the server's translations (mounted.strings, docs/ui.md).
  const STRINGS = {
    uploading: "{percent}% · {done} of {total}",
    speed: "{speed}/s · {left} left",
    ready: "Ready to send · {total}",
    paused: "Paused, reconnecting…",
    complete: "Complete",
    error: "Failed: {message}",
    dismiss: "Dismiss",
    cancel: "Cancel",
    drop_here: "Drop files here or press Enter to choose",
    choose_file: "Choose a file",
    choose_files: "Choose files",
    refused: "{name} was refused: {message}",
    uploaded: "{name} uploaded",
    too_large: "{name} is larger than {limit}",
    not_accepted: "{name} is not an accepted file type ({accept})",
    too_many_files: "Too many files (at most {max})",
    // A picked file that can no longer be read; the engine's own error goes to the console.
    read_failed: "the file changed or was removed after it was picked; choose it again",
    // A paused file whose bytes on disk are no longer those the server holds the start of.
    file_changed: "the file changed while its upload was paused; choose it again",
  };

  function translate(strings, key, vars) {
    const text = strings && typeof strings[key] === "string" ? strings[key] : STRINGS[key] || key;
    return text.replace(/\{(\w+)\}/g, (all, name) => (vars && name in vars ? String(vars[name]) : all));
  }

  // Default styles: every selector inside :where(), so any rule of the page wins (docs/ui.md).
  const DEFAULT_CSS = `
:where([dj-upload-drop]) { border: 2px dashed #8c959f; border-radius: 8px; padding: 1rem; }
:where([dj-upload-drop]:focus-visible) { outline: 2px solid #0969da; outline-offset: 2px; }
:where([dj-upload-drop].upload-dragover) { border-color: #0969da; background-color: rgba(9, 105, 218, 0.08); }
:where([dj-upload-preview]:not(:empty)) { display: grid; grid-template-columns: repeat(auto-fill, 8rem); gap: 0.75rem; margin: 0.5rem 0; }
:where(.upload-preview-item) { display: flex; flex-direction: column; gap: 0.375rem; box-sizing: border-box; width: 8rem; padding: 0.5rem; border: 1px solid #d0d7de; border-radius: 8px; background: #fff; color: #1f2328; font-size: 0.8125rem; line-height: 1.3; }
:where(.upload-preview-item img, .upload-preview-icon) { display: block; box-sizing: border-box; width: 100%; height: 5rem; border-radius: 4px; background: #f6f8fa; }
:where(.upload-preview-item img) { object-fit: contain; }
:where(.upload-preview-icon) { display: flex; align-items: center; justify-content: center; color: #59636e; font-weight: 600; letter-spacing: 0.05em; }
:where(.upload-preview-name) { overflow-wrap: anywhere; }
:where(.upload-preview-item.upload-error) { border-color: #cf222e; background: #fff5f5; }
:where(.upload-preview-item.upload-error .upload-preview-icon) { color: #a40e26; background: #ffebe9; }
:where([dj-upload-progress]:not(:empty)) { display: grid; gap: 0.5rem; margin: 0.5rem 0; }
:where(.upload-progress-item) { display: grid; grid-template-columns: minmax(0, 1fr) auto; align-items: center; gap: 0.375rem 0.75rem; padding: 0.5rem 0.75rem; border: 1px solid #d0d7de; border-radius: 8px; background: #fff; color: #1f2328; font-size: 0.875rem; line-height: 1.4; }
:where(.upload-progress-name) { grid-column: 1; grid-row: 1; font-weight: 600; overflow-wrap: anywhere; }
:where(.upload-progress-item > .upload-cancel) { grid-column: 2; grid-row: 1; }
:where(.upload-progress-track) { grid-column: 1 / -1; height: 0.5rem; border-radius: 999px; background: #e1e5ea; overflow: hidden; }
:where(.upload-progress-bar) { width: 0; height: 100%; border-radius: inherit; background: #0969da; }
:where(.upload-progress-text) { grid-column: 1 / -1; color: #59636e; font-size: 0.8125rem; font-variant-numeric: tabular-nums; }
:where(.upload-complete .upload-progress-bar) { background: #1a7f37; }
:where(.upload-paused .upload-progress-bar) { background: #9a6700; animation: djust-paused 1s ease-in-out infinite alternate; }
:where(.upload-paused .upload-progress-text) { color: #7d4e00; }
:where(.upload-progress-item.upload-error) { border-color: #cf222e; background: #fff5f5; }
:where(.upload-error .upload-progress-track) { background: #ffd7d5; }
:where(.upload-error .upload-progress-bar) { background: #cf222e; }
:where(.upload-error .upload-progress-text) { color: #a40e26; }
:where(.upload-cancel) { font: inherit; font-size: 0.8125rem; line-height: 1.2; padding: 0.25rem 0.625rem; border: 1px solid #d0d7de; border-radius: 6px; background: #f6f8fa; color: #1f2328; cursor: pointer; }
:where(.upload-cancel:hover) { background: #eaeef2; }
:where(.upload-cancel:focus-visible) { outline: 2px solid #0969da; outline-offset: 2px; }
@keyframes djust-paused { to { opacity: 0.4; } }
/* Dark where the page is: a page that declares color-scheme: light dark follows the reader's
   prefers-color-scheme, as native controls do; a light-only page keeps light items. */
@supports (color: light-dark(#000, #fff)) {
  :where([dj-upload-drop]:focus-visible, .upload-cancel:focus-visible) { outline-color: light-dark(#0969da, #4493f8); }
  :where([dj-upload-drop].upload-dragover) { border-color: light-dark(#0969da, #4493f8); background-color: light-dark(rgba(9, 105, 218, 0.08), rgba(68, 147, 248, 0.15)); }
  :where(.upload-preview-item, .upload-progress-item) { border-color: light-dark(#d0d7de, #3d444d); background: light-dark(#fff, #161b22); color: light-dark(#1f2328, #f0f6fc); }
  :where(.upload-preview-item img, .upload-preview-icon) { background: light-dark(#f6f8fa, #21262d); }
  :where(.upload-preview-icon, .upload-progress-text) { color: light-dark(#59636e, #9198a1); }
  :where(.upload-progress-track) { background: light-dark(#e1e5ea, #30363d); }
  :where(.upload-progress-bar) { background: light-dark(#0969da, #4493f8); }
  :where(.upload-complete .upload-progress-bar) { background: light-dark(#1a7f37, #3fb950); }
  :where(.upload-paused .upload-progress-bar) { background: light-dark(#9a6700, #d29922); }
  :where(.upload-paused .upload-progress-text) { color: light-dark(#7d4e00, #d29922); }
  :where(.upload-preview-item.upload-error, .upload-progress-item.upload-error) { border-color: light-dark(#cf222e, #f85149); background: light-dark(#fff5f5, #25171c); }
  :where(.upload-preview-item.upload-error .upload-preview-icon) { color: light-dark(#a40e26, #ff7b72); background: light-dark(#ffebe9, #3d1b1f); }
  :where(.upload-error .upload-progress-track) { background: light-dark(#ffd7d5, #5d1f22); }
  :where(.upload-error .upload-progress-bar) { background: light-dark(#cf222e, #f85149); }
  :where(.upload-error .upload-progress-text) { color: light-dark(#a40e26, #ff7b72); }
  :where(.upload-cancel) { border-color: light-dark(#d0d7de, #3d444d); background: light-dark(#f6f8fa, #21262d); color: light-dark(#1f2328, #f0f6fc); }
  :where(.upload-cancel:hover) { background: light-dark(#eaeef2, #30363d); }
}
@media (prefers-reduced-motion: reduce) {
  :where(.upload-progress-bar) { transition: none; animation: none; }
}
`;
  const UPLOAD_ATTRS = "[dj-upload],[dj-upload-drop],[dj-upload-preview],[dj-upload-progress]";

  // Once per page, first in <head> so that the page's own stylesheets also win ties; off with
  // data-djust-styles="off" on the script tag (DJUST["UPLOAD_DEFAULT_STYLES"] = False).
  function defaultStyles() {
    if (document.getElementById("djust-default-styles")) return;
    if (script && script.getAttribute("data-djust-styles") === "off") return;
    const style = document.createElement("style");
    style.id = "djust-default-styles";
    if (script && script.nonce) style.nonce = script.nonce; // a CSP that allows the script's nonce
    style.textContent = DEFAULT_CSS;
    document.head.insertBefore(style, document.head.firstChild);
  }

  // A polite live region outside the views (a render never touches it), hidden by its own
  // inline style so that it stays hidden with the default styles off.
  function liveRegion() {
    let region = document.getElementById("djust-announcer");
    if (!region) {
      region = document.createElement("div");
      region.id = "djust-announcer";
      region.setAttribute("role", "status");
      region.setAttribute("aria-live", "polite");
      Object.assign(region.style, {
        position: "absolute",
        width: "1px",
        height: "1px",
        margin: "-1px",
        padding: "0",
        overflow: "hidden",
        clip: "rect(0 0 0 0)",
        clipPath: "inset(50%)",
        whiteSpace: "nowrap",
        border: "0",
      });
      document.body.appendChild(region);
    }
    return region;
  }

  // Each message is a new line, so two files finishing together are both read; the last five stay.
  function announce(text) {
    const region = liveRegion();
    const line = document.createElement("div");
    line.textContent = text;
    region.appendChild(line);
    while (region.childElementCount > 5) region.firstElementChild.remove();
  }

  function extensionOf(name) {
    const match = /\.([A-Za-z0-9]{1,5})$/.exec(name);
    return match ? match[1].toUpperCase() : "FILE";
  }

  class Uploads {
    constructor(live) {
      this.live = live;
      this.configs = {};
      this.entries = new Map(); // ref -> entry
      // Files the server keeps that the person cancelled before the page attached them again:
      // ref -> their upload_register, sent once mounted; the server's answer is cancelled.
      this.abandoned = new Map();
      this.nextRef = 0;
      this.waiters = [];
      this.maxStreaming = MAX_STREAMING;
      this.maxFrame = DEFAULT_MAX_FRAME; // the server's MAX_FRAME_SIZE, from mounted
      this.refusedCount = 0;
      if (live.root.querySelector(UPLOAD_ATTRS)) defaultStyles(); // before the first paint
    }

    configure(configs) {
      if (configs) this.configs = configs;
    }

    // A user-facing text from the server's translations (mounted.strings), or the English one.
    t(key, vars) {
      return translate(this.live.strings, key, vars);
    }

    // After each mount and render: inputs, drop zones, and containers the render added.
    bind() {
      if (this.live.root.querySelector(UPLOAD_ATTRS)) {
        defaultStyles();
        liveRegion(); // present before its first message, or screen readers miss it
      }
      // A container that a render added or replaced gets the items of the files the page holds.
      for (const attr of CLIENT_OWNED) {
        for (const container of this.live.root.querySelectorAll("[" + attr + "]")) {
          const name = container.getAttribute(attr);
          if (container.__djustFilled === name) continue;
          container.__djustFilled = name;
          this.entries.forEach((entry) => {
            if (entry.uploadName !== name) return;
            if (attr === "dj-upload-preview") this.previewItem(container, entry);
            else this.progressItemIn(container, entry);
          });
        }
      }
      // Set accept/multiple from the slot config on inputs that do not set them themselves.
      for (const input of this.live.root.querySelectorAll("input[dj-upload]")) {
        const config = this.configs[input.getAttribute("dj-upload")];
        if (!config) continue;
        input.__djustAttrs = input.__djustAttrs || new Set();
        if (config.accept && !input.hasAttribute("accept")) {
          input.setAttribute("accept", config.accept);
          input.__djustAttrs.add("accept");
        }
        if (config.max_entries > 1 && !input.hasAttribute("multiple")) {
          input.setAttribute("multiple", "");
          input.__djustAttrs.add("multiple");
        }
        // An input with no label of its own gets a name, so that a screen reader can say it.
        const own = input.__djustAttrs.has("aria-label");
        const named =
          input.labels.length > 0 ||
          (input.hasAttribute("aria-label") && !own) ||
          ["aria-labelledby", "title"].some((a) => input.hasAttribute(a));
        if (!named) {
          input.setAttribute("aria-label", this.t(input.multiple ? "choose_files" : "choose_file"));
          input.__djustAttrs.add("aria-label");
        } else if (own) {
          input.removeAttribute("aria-label");
          input.__djustAttrs.delete("aria-label");
        }
      }
      for (const zone of this.live.root.querySelectorAll("[dj-upload-drop]")) {
        if (!zone.__djustDrop) this.bindDrop(zone);
        this.zoneKeyboard(zone);
      }
    }

    // A zone without a visible control of its own is one for the keyboard: focusable, a button
    // (Enter or Space opens the picker), its text as its name and the hint as its title.
    zoneKeyboard(zone) {
      const owned = (zone.__djustAttrs = zone.__djustAttrs || new Set());
      const controls = zone.querySelectorAll("a[href],button,input,select,textarea,[tabindex]");
      const reachable = Array.from(controls).some(
        (el) => el.type !== "hidden" && !el.disabled && el.getClientRects().length > 0,
      );
      const wanted = { tabindex: "0", role: "button", title: this.t("drop_here") };
      for (const [name, value] of Object.entries(wanted)) {
        if (owned.has(name) && zone.getAttribute(name) !== value) owned.delete(name); // the page's now
        if (reachable && owned.has(name)) {
          zone.removeAttribute(name);
          owned.delete(name);
        } else if (!reachable && (owned.has(name) || !zone.hasAttribute(name))) {
          zone.setAttribute(name, value);
          owned.add(name);
        }
      }
    }

    // The picker of slot ``name``: the zone's input, another of the slot's, or one made for it.
    choose(name, zone) {
      const selector = 'input[type=file][dj-upload="' + CSS.escape(name) + '"]';
      let input = zone.querySelector(selector) || this.live.root.querySelector(selector);
      if (!input) {
        const config = this.configs[name] || {};
        input = document.createElement("input");
        input.type = "file";
        if (config.accept) input.accept = config.accept;
        input.multiple = config.max_entries > 1;
        input.addEventListener("change", () => this.select(name, input.files, null));
      }
      input.click();
    }

    bindDrop(zone) {
      zone.__djustDrop = true;
      zone.addEventListener("keydown", (e) => {
        if (e.target !== zone || (e.key !== "Enter" && e.key !== " ")) return;
        e.preventDefault(); // Space would scroll the page
        this.choose(zone.getAttribute("dj-upload-drop"), zone);
      });
      zone.__djustClasses = zone.__djustClasses || new Set();
      // Only a drag of files is one for the zone: dragged text or links pass over it.
      const files = (e) =>
        !!e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files");
      const highlight = (on) => {
        zone.classList.toggle("upload-dragover", on);
        if (on) zone.__djustClasses.add("upload-dragover");
        else zone.__djustClasses.delete("upload-dragover");
      };
      // Entering a child of the zone fires dragenter on it before dragleave on the zone, and
      // Firefox and WebKit leave relatedTarget null: the depth of entered elements tells when
      // the drag has really left.
      let depth = 0;
      zone.addEventListener("dragenter", (e) => {
        if (!files(e)) return;
        e.preventDefault();
        depth += 1;
        highlight(true);
      });
      zone.addEventListener("dragover", (e) => {
        if (files(e)) e.preventDefault(); // lets the files drop here
      });
      zone.addEventListener("dragleave", (e) => {
        if (!files(e) || depth === 0) return;
        depth -= 1;
        if (depth === 0) highlight(false);
      });
      zone.addEventListener("drop", (e) => {
        e.preventDefault();
        depth = 0;
        highlight(false);
        if (e.dataTransfer && e.dataTransfer.files.length) {
          const name = zone.getAttribute("dj-upload-drop");
          droppedFiles(e.dataTransfer).then((files) => this.select(name, files, null));
        }
      });
    }

    // The entries that hold a place in the slot (a failed file no longer does).
    slotEntries(name) {
      return Array.from(this.entries.values()).filter(
        (e) => e.uploadName === name && e.status !== "error",
      );
    }

    fail(entry, code, message) {
      emit("djust:upload:error", {
        file: entry.name,
        error: message,
        ref: entry.ref,
        code: code,
        uploadName: entry.uploadName,
      });
    }

    // An upload fails for good: its item shows why until the person dismisses it.
    failed(entry, code, message) {
      this.stopParts(entry);
      this.forget(entry);
      entry.status = "error";
      entry.error = message;
      this.report(entry, true);
      announce(this.t("refused", { name: entry.name, message: message }));
      this.fail(entry, code, message);
      this.settled();
      this.schedule();
    }

    // The record that lets this file resume after a reload, kept while the server keeps it.
    remember(entry) {
      if (!entry.resume || !(entry.ttl > 0)) return;
      const list = resumable().filter((r) => r.token !== entry.resume);
      list.push({
        path: location.pathname,
        slot: entry.uploadName,
        name: entry.name,
        size: entry.size,
        modified: entry.lastModified,
        token: entry.resume,
        expires: Date.now() + entry.ttl * 1000,
      });
      keepResumable(list);
    }

    forget(entry) {
      if (!entry.resume) return;
      keepResumable(resumable().filter((r) => r.token !== entry.resume));
      entry.resume = null;
    }

    // The token of a file the server may still hold, for the same file picked again on this
    // page and slot; never one an entry of the page is using.
    stored(name, file) {
      const used = new Set(Array.from(this.entries.values(), (e) => e.resume));
      const record = resumable().find(
        (r) =>
          r.path === location.pathname &&
          r.slot === name &&
          r.name === file.name &&
          r.size === file.size &&
          r.modified === file.lastModified &&
          !used.has(r.token),
      );
      return record ? record.token : null;
    }

    // A file the slot's limits refuse here: the server lists it in uploads.<name>.errors too.
    refuse(probe, file, code, message) {
      // Shown at once as a failed item (never an image) until dismissed. It never reaches the
      // server as an upload, so its key is no ref of the protocol.
      const entry = {
        ref: "refused-" + this.refusedCount++,
        refused: true,
        uploadName: probe.uploadName,
        file: file,
        name: file.name,
        size: file.size,
        status: "error",
        error: message,
        sent: 0,
        acked: 0,
        progress: 0,
      };
      this.entries.set(entry.ref, entry);
      this.preview(entry);
      this.progressItem(entry);
      announce(this.t("refused", { name: file.name, message: message }));
      this.fail(probe, code, message);
      this.live.send({
        t: "upload_refused",
        name: probe.uploadName,
        client_name: file.name,
        client_type: file.type || "",
        client_size: file.size,
        code: code,
        message: message,
      });
    }

    // Files chosen or dropped: check them here before a byte moves, then preview and queue them.
    select(name, fileList, input) {
      const config = this.configs[name];
      const files = Array.from(fileList || []);
      if (!config) {
        files.forEach((f) =>
          this.fail({ name: f.name, ref: null, uploadName: name }, "unknown_slot", "no upload slot " + name),
        );
        return;
      }
      // A single-file slot replaces its file (and clears a failed one) when the user picks again.
      if (config.max_entries === 1 && files.length) {
        Array.from(this.entries.values())
          .filter((e) => e.uploadName === name)
          .forEach((e) => this.cancel(e.ref));
      }
      let room = config.max_entries - this.slotEntries(name).length;
      for (const file of files) {
        const probe = { name: file.name, ref: null, uploadName: name };
        if (room <= 0) {
          this.refuse(probe, file, "too_many_files", this.t("too_many_files", { max: config.max_entries }));
          continue;
        }
        if (file.size > config.max_file_size) {
          const limit = formatSize(config.max_file_size);
          this.refuse(probe, file, "too_large", this.t("too_large", { name: file.name, limit: limit }));
          continue;
        }
        if (!accepts(config.accept, file)) {
          const accept = config.accept;
          this.refuse(probe, file, "not_accepted", this.t("not_accepted", { name: file.name, accept: accept }));
          continue;
        }
        room -= 1;
        const entry = {
          ref: String(this.nextRef++),
          uploadName: name,
          file: file,
          name: file.name,
          size: file.size,
          lastModified: file.lastModified, // a read checks the file has not changed since
          chunkSize: config.chunk_size,
          status: "pending",
          sent: 0,
          acked: 0,
          progress: 0,
          reported: -1,
          reportedAt: 0,
          // The same file picked again while the server keeps its bytes: it asks to continue
          // them, or to start afresh if they are gone (fallback).
          resume: this.stored(name, file),
          fallback: true,
        };
        this.entries.set(entry.ref, entry);
        this.preview(entry);
        this.progressItem(entry);
        this.report(entry, true);
        if (config.auto_upload) this.start(entry);
        this.showImage(entry);
      }
      // Clear the input so choosing the same file again fires "change".
      if (input) input.value = "";
      this.schedule();
    }

    start(entry) {
      if (entry.status !== "pending") return;
      entry.status = "queued";
      this.report(entry, true);
    }

    // Start queued entries while fewer than MAX_STREAMING are streaming.
    schedule() {
      if (!this.live.mounted) return;
      let streaming = this.abandoned.size; // each holds a place on the server until cancelled
      this.entries.forEach((e) => {
        if (e.status === "registering" || e.status === "uploading") streaming += 1;
      });
      for (const entry of this.entries.values()) {
        if (streaming >= this.maxStreaming) break;
        if (entry.status !== "queued") continue;
        entry.status = "registering";
        this.report(entry, true);
        streaming += 1;
        this.register(entry);
      }
    }

    // upload_register; with the entry's resume token, the server attaches the entry it keeps.
    register(entry) {
      this.live.send({ ...this.registration(entry), id: this.live.nextId++ });
    }

    registration(entry) {
      return {
        t: "upload_register",
        name: entry.uploadName,
        ref: entry.ref,
        client_name: entry.name,
        client_type: entry.file.type || "",
        client_size: entry.size,
        client_modified: entry.lastModified,
        client_path: relativePath(entry.file) || undefined, // folder uploads only
        resume: entry.resume || undefined,
        fallback: entry.resume && entry.fallback ? true : undefined,
      };
    }

    // A file the server keeps for a connection that closed (or for the page before a reload),
    // cancelled before the page attached it again: once mounted, the page attaches it by its
    // token and cancels it at once, so that the server lets its bytes and quota go now rather
    // than at the end of its grace period. Never a fallback: a file that is gone stays gone.
    abandon(entry) {
      const message = { ...this.registration(entry), fallback: undefined };
      this.abandoned.set(entry.ref, message);
      if (this.live.mounted) this.live.send({ ...message, id: this.live.nextId++ });
    }

    reclaim(m) {
      if (m.t === "upload_registered") {
        this.live.send({ t: "upload_cancel", ref: m.ref });
      } else if (["upload_error", "upload_cancelled", "upload_consumed"].includes(m.t)) {
        this.abandoned.delete(m.ref); // gone from the server, or never there any more
        this.schedule();
      }
    }

    receive(m) {
      if (this.abandoned.has(m.ref)) return this.reclaim(m);
      const entry = this.entries.get(m.ref);
      if (!entry) return;
      switch (m.t) {
        case "upload_registered": {
          // A new entry starts at 0; one the server kept continues from the server's offset.
          const offset = Math.max(0, Math.min(entry.size, Number(m.offset) || 0));
          entry.window = m.window;
          entry.fallback = false; // attached: from now on a resume must find this very entry
          if (m.resume !== entry.resume) this.forget(entry);
          entry.resume = m.resume || null; // absent when the server's resume is off
          entry.ttl = Number(m.ttl) || 0;
          this.remember(entry);
          if (m.checked) {
            entry.checked = true; // its first bytes passed the content checks before
            this.showImage(entry);
          }
          // A complete file attached again: its upload_complete follows.
          if (entry.status === "complete" && offset === entry.size) break;
          entry.status = "uploading";
          entry.sent = entry.acked = offset;
          entry.ahead = null;
          // Registered again after a drop. A Blob run the engine could not read closes the socket
          // (a change the probe of the last byte did not see): after a second drop, the page
          // reads the file itself, so that such a file fails as read_failed instead of looping.
          if (entry.blobs) entry.reads = (entry.drops = (entry.drops || 0) + 1) >= 2;
          entry.progress = entry.size ? Math.floor((offset * 100) / entry.size) : 0;
          this.report(entry, true);
          if (m.external) this.startParts(entry, m);
          else this.pump(entry);
          break;
        }
        case "upload_presigned":
          this.presigned(entry, m);
          break;
        case "upload_ack":
          // Acks apply in order: a late one (below what is acknowledged) changes nothing, and
          // a file that is not uploading takes none, so progress never moves backwards.
          if (entry.status !== "uploading" || !(m.offset >= entry.acked)) break;
          entry.acked = m.offset;
          if (m.rate) entry.rate = m.rate; // the server's measure: the same for every client
          if (m.window) {
            entry.window = m.window; // opened once the first bytes passed the content checks
            entry.checked = true;
            this.showImage(entry);
          }
          this.setProgress(entry, entry.size ? Math.floor((m.offset * 100) / entry.size) : 100);
          if (entry.direct) this.sendParts(entry);
          else this.pump(entry);
          break;
        case "upload_complete": {
          const again = entry.status === "complete"; // attached again after a reconnect
          entry.status = "complete";
          entry.sent = entry.acked = entry.size;
          entry.checked = true;
          this.setProgress(entry, 100);
          this.report(entry, true);
          this.showImage(entry);
          if (!again) announce(this.t("uploaded", { name: entry.name }));
          this.settled();
          this.schedule();
          break;
        }
        case "upload_error":
          // Refusals of a resume too (resume_expired, resume_denied, file_changed,
          // unknown_slot, resume_unavailable): the server holds nothing of this file any more.
          this.failed(entry, m.code, m.message);
          break;
        case "upload_cancelled":
        case "upload_consumed":
          this.forget(entry);
          // The answer to the cancel sent for a file that failed here: its item stays, with
          // the reason, until the person dismisses it.
          if (entry.status !== "error") this.remove(entry);
          break;
      }
    }

    // Send runs of chunks while the bytes in flight stay within the server's window. The file
    // is read one run at a time, never whole.
    async pump(entry) {
      if (entry.pumping) return; // the running pump sees new acks after its read
      entry.pumping = true;
      const attempt = entry.attempt; // a reconnect starts the file again: this pump then stops
      const run = Math.max(1, Math.floor((this.maxFrame - HEADER_SIZE) / entry.chunkSize));
      let probed = false;
      try {
        while (entry.status === "uploading" && entry.attempt === attempt && entry.sent < entry.size) {
          // The server enforces the window: offset + length - acked <= window.
          const limit = Math.min(entry.size, entry.acked + entry.window, entry.sent + run * entry.chunkSize);
          const end = limit === entry.size ? limit : entry.sent + Math.floor((limit - entry.sent) / entry.chunkSize) * entry.chunkSize;
          if (end <= entry.sent) break; // not a whole chunk of room: the next ack brings more
          if (BLOB_RUNS && !entry.reads) {
            // The file's size and time, and its last byte read, once per pass (the runs of a
            // pass then leave without a pause): the read fails where a Blob would close the
            // socket, for a file cut short (Firefox) or modified (Chromium) since it was picked.
            if (!probed) {
              await readExactly(entry, entry.size - 1, entry.size);
              probed = true;
              if (entry.status !== "uploading" || entry.attempt !== attempt) break;
            }
            entry.blobs = true;
            this.live.sendBinary(new Blob([this.header(entry), entry.file.slice(entry.sent, end)]));
            entry.sent = end;
            continue;
          }
          const frame = new Uint8Array(HEADER_SIZE + end - entry.sent);
          frame.set(new Uint8Array(this.header(entry)));
          const reading = this.read(entry, entry.sent, end);
          // Read the next run while this one waits for its bytes and then leaves.
          const next = Math.min(entry.size, end + run * entry.chunkSize);
          entry.ahead = end < entry.size ? this.readAhead(entry, end, next) : null;
          // A run read ahead may reach past what the window allows now: only its start is sent.
          frame.set(new Uint8Array(await reading, 0, end - entry.sent), HEADER_SIZE);
          // Cancelled, failed or paused while reading.
          if (entry.status !== "uploading" || entry.attempt !== attempt) break;
          this.live.sendBinary(frame);
          entry.sent = end;
        }
      } catch (error) {
        // The file became unreadable (changed, moved, permissions): fail this upload only.
        if (entry.status === "uploading" && entry.attempt === attempt) {
          this.live.send({ t: "upload_cancel", ref: entry.ref });
          console.warn("djust: " + entry.name + " could not be read:", error);
          this.failed(entry, "read_failed", this.t("read_failed"));
        }
      } finally {
        entry.pumping = false;
        if (entry.attempt !== attempt) this.pump(entry); // the new attempt's pump returned early
      }
    }

    // The bytes [start, end) of the file: from the run read ahead when it covers them.
    read(entry, start, end) {
      const ahead = entry.ahead;
      entry.ahead = null;
      if (ahead && ahead.start === start && ahead.end >= end) return ahead.bytes;
      return readExactly(entry, start, end);
    }

    readAhead(entry, start, end) {
      const bytes = readExactly(entry, start, end);
      bytes.catch(() => {}); // reported by the read that uses it, if any
      return { start: start, end: end, bytes: bytes };
    }

    // The 13-byte chunk frame header: type, ref, offset (docs/protocol.md, section 5).
    header(entry) {
      const header = new ArrayBuffer(HEADER_SIZE);
      const view = new DataView(header);
      view.setUint8(0, FRAME_RUN);
      view.setUint32(1, Number(entry.ref));
      view.setBigUint64(5, BigInt(entry.sent));
      return header;
    }

    // Straight to the bucket (docs/storage.md, "Direct to S3"): in a slot with
    // external=S3Direct() no byte goes over the socket. Each part of the file is PUT to the
    // bucket at a URL the server signs for that part's SHA-256 (upload_presign, then
    // upload_presigned), and the server is told its ETag once it landed (upload_part). Part 1
    // goes alone: the server reads it back for the content checks, and the ack that says it
    // passed opens the window to several parts. Progress moves by whole parts (fetch reports
    // nothing within a request body); a cancel aborts the PUTs in flight.

    // upload_registered with "external": start, or go on after the parts the server has.
    startParts(entry, m) {
      let d = entry.direct;
      if (!d || !m.resume || d.token !== m.resume) {
        if (d) d.abort.abort(); // a new upload on the server: the old one's PUTs are of no use
        entry.checked = Boolean(m.checked);
        d = entry.direct = {
          token: m.resume || null,
          partSize: m.external.part_size,
          count: m.external.parts,
          parts: new Map(), // part number -> {state, checksum, etag, sign}
          abort: new AbortController(),
        };
      }
      const known = new Set(m.external.landed || []);
      d.parts.forEach((record, part) => {
        if (known.has(part)) record.state = "landed";
        // Landed while the socket was down: the server hears of it now.
        else if (record.state === "landed") this.reportPart(entry, part, record);
        // Its URL was asked for on the socket that closed: asked again.
        else if (record.sign) this.askPart(entry, part, record);
      });
      known.forEach((part) => d.parts.has(part) || d.parts.set(part, { state: "landed" }));
      this.sendParts(entry);
    }

    // Start parts while the window allows: part 1 alone until it passed the server's checks.
    sendParts(entry) {
      const d = entry.direct;
      if (!d || entry.status !== "uploading") return;
      let busy = 0;
      d.parts.forEach((record) => (busy += record.state === "landed" ? 0 : 1));
      let room = entry.checked ? Math.max(1, Math.floor(entry.window / d.partSize)) : 1;
      if (!entry.checked && d.parts.has(1)) room = 0;
      for (let part = 1; part <= d.count && busy < room; part++) {
        if (d.parts.has(part)) continue;
        busy += 1;
        this.sendPart(entry, d, part);
      }
    }

    // One part: read it, hash it, get its URL, PUT it, report it. A file that cannot be read
    // fails as on the socket (read_failed); a PUT that fails is reported to the server, which
    // aborts the upload and answers with upload_error.
    async sendPart(entry, d, part) {
      const record = { state: "reading" };
      d.parts.set(part, record);
      const start = (part - 1) * d.partSize;
      let body;
      try {
        body = await readExactly(entry, start, Math.min(entry.size, start + d.partSize));
      } catch (error) {
        if (entry.direct === d && entry.status === "uploading") {
          this.live.send({ t: "upload_cancel", ref: entry.ref });
          console.warn("djust: " + entry.name + " could not be read:", error);
          this.failed(entry, "read_failed", this.t("read_failed"));
        }
        return;
      }
      try {
        if (!(window.crypto && crypto.subtle)) throw new Error("SHA-256 needs an https page");
        const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
        record.checksum = btoa(String.fromCharCode.apply(null, digest));
        const signed = await new Promise((resolve, reject) => {
          record.sign = resolve;
          d.abort.signal.addEventListener("abort", () => reject(new Error("cancelled")));
          this.askPart(entry, part, record);
        });
        record.state = "putting";
        const response = await this.putPart(signed, body, d);
        record.etag = response.headers.get("ETag");
        if (!record.etag) throw new Error("the bucket's CORS rules do not expose ETag");
      } catch (error) {
        if (d.abort.signal.aborted || entry.direct !== d) return; // cancelled, or started again
        record.state = "failed";
        const reason = error instanceof TypeError ? "the bucket cannot be reached (network or CORS)" : "";
        const message = (error && error.message) || String(error);
        this.live.send({ t: "upload_part", ref: entry.ref, part: part, error: reason || message });
        return;
      }
      record.state = "landed";
      this.reportPart(entry, part, record);
      this.sendParts(entry);
    }

    askPart(entry, part, record) {
      record.state = "signing";
      this.live.send({ t: "upload_presign", ref: entry.ref, part: part, checksum: record.checksum });
    }

    presigned(entry, m) {
      const record = entry.direct && entry.direct.parts.get(m.part);
      if (!record || !record.sign) return;
      const resolve = record.sign;
      record.sign = null;
      resolve(m);
    }

    reportPart(entry, part, record) {
      this.live.send({ t: "upload_part", ref: entry.ref, part: part, etag: record.etag, checksum: record.checksum });
    }

    // A dropped connection or the bucket's 5xx is tried twice more; any other answer (an
    // expired URL, a bad digest: S3 names it in <Code>) is final.
    async putPart(signed, body, d) {
      for (let attempt = 0; ; attempt++) {
        let response = null;
        let problem;
        try {
          const init = { method: "PUT", body: body, headers: signed.headers || {}, signal: d.abort.signal };
          response = await fetch(signed.url, init);
          if (response.ok) return response;
          const code = /<Code>([^<]*)<\/Code>/.exec(await response.text());
          problem = new Error("the bucket answered " + response.status + (code ? " " + code[1] : ""));
        } catch (error) {
          if (d.abort.signal.aborted) throw error;
          problem = error;
        }
        if (attempt >= 2 || (response && response.status < 500)) throw problem;
        await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt));
      }
    }

    stopParts(entry) {
      if (entry.direct) entry.direct.abort.abort();
    }

    setProgress(entry, progress) {
      entry.progress = Math.min(100, progress);
      this.report(entry, false);
    }

    // djust:upload:progress on every whole percent, at least every 100 ms, and on status changes.
    // The page's progress items are drawn on status changes and at most every PAINT_EVERY ms
    // (the last figure drawn when the time is up): a bar redrawn on every percent of a fast
    // upload costs the browser more than the upload itself (docs/performance.md, "Every engine").
    report(entry, force) {
      const now = Date.now();
      if (!force && entry.progress === entry.reported && now - entry.reportedAt < 100) return;
      entry.reported = entry.progress;
      entry.reportedAt = now;
      this.paint(entry, force, now);
      if (force) this.renderPreview(entry);
      emit("djust:upload:progress", {
        ref: entry.ref,
        progress: entry.progress,
        status: entry.status,
        uploadName: entry.uploadName,
        file: entry.name,
      });
    }

    containers(attr, name) {
      return this.live.root.querySelectorAll("[" + attr + '="' + CSS.escape(name) + '"]');
    }

    // One preview item per container: the file's type as a label until its image may show.
    preview(entry) {
      for (const container of this.containers("dj-upload-preview", entry.uploadName)) {
        this.previewItem(container, entry);
      }
    }

    previewItem(container, entry) {
      const item = document.createElement("div");
      item.className = "upload-preview-item";
      item.setAttribute("data-ref", entry.ref);
      const label = document.createElement("span");
      label.className = "upload-preview-name";
      label.textContent = entry.name + " (" + formatSize(entry.size) + ")";
      item.appendChild(label);
      container.appendChild(item);
      this.renderPreviewItem(item, entry);
    }

    // An image only for a picture the browser can draw and that passed the checks so far: the
    // server's content checks once the file is sent (the first upload_ack that opens the full
    // window, or upload_complete), the browser's own while it waits for a form's submit.
    showImage(entry) {
      if (entry.refused || entry.decoding || !(entry.file.type || "").startsWith("image/")) return;
      if (!entry.checked && entry.status !== "pending") return;
      entry.url = entry.url || URL.createObjectURL(entry.file);
      const probe = new Image();
      probe.src = entry.url;
      entry.decoding = probe.decode().then(
        () => {
          entry.image = true;
          if (this.entries.get(entry.ref) === entry) this.renderPreview(entry);
        },
        () => {}, // not a picture the browser can draw: the label stays
      );
    }

    renderPreview(entry) {
      for (const item of this.items("upload-preview-item", entry)) this.renderPreviewItem(item, entry);
    }

    renderPreviewItem(item, entry) {
      const failed = entry.status === "error";
      item.classList.toggle("upload-error", failed);
      const image = entry.image && !failed; // a file the server refused shows no image
      const shown = item.querySelector(image ? "img" : ".upload-preview-icon");
      if (shown) return;
      const old = item.querySelector(image ? ".upload-preview-icon" : "img");
      let visual;
      if (image) {
        visual = document.createElement("img");
        visual.src = entry.url;
        visual.alt = ""; // the name follows it
      } else {
        visual = document.createElement("span");
        visual.className = "upload-preview-icon";
        visual.setAttribute("aria-hidden", "true");
        visual.textContent = extensionOf(entry.name);
      }
      if (old) old.replaceWith(visual);
      else item.insertBefore(visual, item.firstChild);
    }

    progressItem(entry) {
      for (const container of this.containers("dj-upload-progress", entry.uploadName)) {
        this.progressItemIn(container, entry);
      }
    }

    progressItemIn(container, entry) {
      const item = document.createElement("div");
      item.className = "upload-progress-item";
      item.setAttribute("data-ref", entry.ref);
      const label = document.createElement("span");
      label.className = "upload-progress-name";
      label.textContent = entry.name;
      const track = document.createElement("div");
      track.className = "upload-progress-track";
      const bar = document.createElement("div");
      bar.className = "upload-progress-bar";
      bar.setAttribute("role", "progressbar");
      bar.setAttribute("aria-valuemin", "0");
      bar.setAttribute("aria-valuemax", "100");
      bar.setAttribute("aria-label", entry.name);
      track.appendChild(bar);
      const text = document.createElement("span");
      text.className = "upload-progress-text";
      const button = document.createElement("button");
      button.type = "button";
      button.className = "upload-cancel";
      button.addEventListener("click", (e) => {
        e.preventDefault();
        e.stopPropagation();
        this.cancel(entry.ref);
      });
      item.append(label, track, text, button);
      container.appendChild(item);
      this.renderProgressItem(item, entry);
    }

    items(className, entry) {
      return this.live.root.querySelectorAll("." + className + '[data-ref="' + entry.ref + '"]');
    }

    renderProgress(entry) {
      for (const item of this.items("upload-progress-item", entry)) this.renderProgressItem(item, entry);
    }

    paint(entry, force, now) {
      const wait = PAINT_EVERY - (now - (entry.paintedAt || 0));
      if (force || wait <= 0) {
        clearTimeout(entry.painting);
        entry.painting = null;
        entry.paintedAt = now;
        this.renderProgress(entry);
      } else if (!entry.painting) {
        entry.painting = setTimeout(() => this.paint(entry, true, Date.now()), wait);
      }
    }

    // While the socket is down, a file that waits for it or was cut off is paused.
    paused(entry) {
      return entry.status === "paused" || (entry.status === "queued" && !this.live.mounted);
    }

    // What is happening, in words: the item's text and its bar's aria-valuetext.
    describe(entry) {
      const total = formatSize(entry.size);
      if (entry.status === "error") return this.t("error", { message: entry.error });
      if (entry.status === "complete") return this.t("complete") + " · " + total;
      if (this.paused(entry)) return this.t("paused");
      if (entry.status === "pending") return this.t("ready", { total: total });
      let text = this.t("uploading", {
        percent: entry.progress,
        done: formatSize(Math.min(entry.acked, entry.size)),
        total: total,
      });
      if (entry.status === "uploading" && entry.rate > 0 && entry.acked < entry.size) {
        const left = formatDuration((entry.size - entry.acked) / entry.rate);
        text += " · " + this.t("speed", { speed: formatSize(entry.rate), left: left });
      }
      return text;
    }

    renderProgressItem(item, entry) {
      const text = this.describe(entry);
      const bar = item.querySelector(".upload-progress-bar");
      bar.style.width = entry.progress + "%";
      bar.setAttribute("aria-valuenow", String(entry.progress));
      bar.setAttribute("aria-valuetext", text);
      const line = item.querySelector(".upload-progress-text");
      if (line.textContent !== text) line.textContent = text;
      const failed = entry.status === "error";
      item.classList.toggle("upload-active", entry.status === "uploading");
      item.classList.toggle("upload-paused", this.paused(entry));
      item.classList.toggle("upload-complete", entry.status === "complete");
      item.classList.toggle("upload-error", failed);
      item.setAttribute("data-status", entry.status);
      const button = item.querySelector(".upload-cancel");
      const action = this.t(failed ? "dismiss" : "cancel");
      if (button.textContent !== action) {
        button.textContent = action;
        button.setAttribute("aria-label", action + " " + entry.name);
      }
    }

    cancel(ref) {
      const entry = this.entries.get(ref);
      if (!entry) return;
      // A file the server keeps but this connection has not attached (paused, waiting for its
      // turn, or complete while the socket is down) is attached by its token, then cancelled.
      const kept =
        entry.resume &&
        (this.paused(entry) || entry.status === "queued" || (entry.status === "complete" && !this.live.mounted));
      if (kept) this.abandon(entry);
      // Never resumed after a reload.
      this.forget(entry);
      if (!kept && !["pending", "queued", "paused", "error"].includes(entry.status)) {
        this.live.send({ t: "upload_cancel", ref: ref });
      }
      if (!entry.refused) {
        entry.status = "cancelled";
        this.report(entry, true);
      }
      this.remove(entry);
    }

    remove(entry) {
      this.stopParts(entry);
      clearTimeout(entry.painting);
      this.entries.delete(entry.ref);
      for (const className of ["upload-preview-item", "upload-progress-item"]) {
        for (const item of this.items(className, entry)) {
          // Focus on a button that goes away moves to the next item's (or the previous one's).
          if (item.contains(document.activeElement)) {
            const next = item.nextElementSibling || item.previousElementSibling;
            const button = next && next.querySelector(".upload-cancel");
            if (button) button.focus();
          }
          item.remove();
        }
      }
      if (entry.url) URL.revokeObjectURL(entry.url);
      this.settled();
      this.schedule();
    }

    // Upload the pending files of the slots inside ``form``; resolve once none is in flight.
    flush(form) {
      const names = new Set();
      form.querySelectorAll("[dj-upload],[dj-upload-drop]").forEach((el) => {
        names.add(el.getAttribute("dj-upload") || el.getAttribute("dj-upload-drop"));
      });
      const mine = () => Array.from(this.entries.values()).filter((e) => names.has(e.uploadName));
      mine().forEach((e) => this.start(e));
      this.schedule();
      const busy = () => mine().some((e) => ["queued", "registering", "uploading"].includes(e.status));
      if (!busy()) return Promise.resolve();
      return new Promise((resolve) => this.waiters.push({ busy: busy, resolve: resolve }));
    }

    // Whether an upload waits on the server: bytes sent that it has not acknowledged yet.
    waiting() {
      for (const e of this.entries.values()) {
        if (e.status === "uploading" && e.sent > e.acked) return true;
      }
      return false;
    }

    settled() {
      this.waiters = this.waiters.filter((w) => {
        if (w.busy()) return true;
        w.resolve();
        return false;
      });
    }

    // The socket closed. A file on its way is paused until the client reconnects; only a socket
    // that will not come back (``stopped``) fails it.
    disconnected(stopped) {
      let paused = 0;
      this.entries.forEach((entry) => {
        const unfinished = ["queued", "registering", "uploading", "paused"].includes(entry.status);
        if (unfinished && stopped) {
          entry.status = "error";
          entry.error = "connection lost";
          this.report(entry, true);
          this.fail(entry, "disconnected", "the connection was lost during the upload");
        } else if (entry.status === "registering" || entry.status === "uploading") {
          entry.status = "paused";
          entry.rate = 0;
          this.report(entry, true);
          this.remember(entry); // the server's grace period starts now
          paused += 1;
        } else if (entry.status === "queued" || entry.status === "paused") {
          this.renderProgress(entry);
          paused += 1;
        } else if (entry.status === "complete" && entry.resume && !stopped) {
          this.remember(entry); // kept by the server until it is attached again
        } else if (entry.status === "complete") {
          // Gone from the page; a server that keeps it lets the same file picked after a
          // reload attach it again (its record stays).
          this.remove(entry);
        }
      });
      // Once per outage, however many attempts to reconnect fail.
      if (paused && !this.pausedAnnounced) announce(this.t("paused"));
      this.pausedAnnounced = this.pausedAnnounced || paused > 0;
      this.settled();
    }

    // Mounted again. A file the server keeps (it gave a resume token) is attached again under
    // its ref: a paused one continues from the server's offset, a complete one stays complete.
    // Without a token the server kept no byte: a paused file starts again from the first (in a
    // slot that uploads on submit, at the next submit: the one in flight was dropped).
    connected() {
      this.pausedAnnounced = false;
      for (const message of this.abandoned.values()) this.live.send({ ...message, id: this.live.nextId++ });
      this.entries.forEach((entry) => {
        if (entry.status === "complete" && entry.resume) {
          this.register(entry);
        } else if (entry.status === "paused" && entry.resume) {
          this.resume(entry);
        } else if (entry.status === "paused") {
          const config = this.configs[entry.uploadName];
          Object.assign(entry, { sent: 0, acked: 0, progress: 0, rate: 0, ahead: null });
          entry.attempt = (entry.attempt || 0) + 1;
          entry.status = config && !config.auto_upload ? "pending" : "queued";
          this.report(entry, true);
        } else if (entry.status === "queued") {
          this.renderProgress(entry);
        }
      });
    }

    // A paused file continues only if it is still the file the server holds the start of: its
    // size and time, then one byte read (Chromium refuses to read a file modified since it was
    // picked, WebKit reads short).
    resume(entry) {
      const attempt = (entry.attempt = (entry.attempt || 0) + 1); // stops the old pump
      entry.ahead = null;
      readExactly(entry, 0, Math.min(1, entry.size)).then(
        () => {
          if (entry.attempt !== attempt || entry.status !== "paused" || !this.live.mounted) return;
          entry.status = "queued"; // registers with its token when a stream is free
          this.report(entry, true);
          this.schedule();
        },
        (error) => {
          if (entry.attempt !== attempt || entry.status !== "paused") return;
          console.warn("djust: " + entry.name + " changed while its upload was paused:", error);
          this.failed(entry, "file_changed", this.t("file_changed"));
        },
      );
    }
  }

  /* ------------------------------------------------------------------ boot */

  function boot() {
    for (const root of document.querySelectorAll("[dj-view]")) {
      if (!root.__djust) root.__djust = new Live(root);
    }
  }

  window.djust = { morph: morph, boot: boot };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
