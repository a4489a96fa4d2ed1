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
      this.uploads = new Uploads(this);
      this.connect();
    }

    connect() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const ws = new WebSocket(scheme + location.host + WS_PATH);
      ws.binaryType = "arraybuffer";
      ws.onopen = () => ws.send(JSON.stringify({ t: "mount", token: this.token }));
      ws.onmessage = (e) => this.receive(JSON.parse(e.data));
      ws.onclose = () => this.closed(ws);
      this.ws = ws;
    }

    closed(ws) {
      if (ws !== this.ws) return;
      const was = this.mounted;
      this.mounted = false;
      this.uploads.disconnected();
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
          this.uploads.configure(m.uploads);
          if (m.max_concurrent_uploads) {
            this.uploads.maxStreaming = Math.min(MAX_STREAMING, m.max_concurrent_uploads);
          }
          if (m.max_frame_size) this.uploads.maxFrame = m.max_frame_size;
          morph(this.root, m.html);
          this.uploads.bind();
          this.uploads.schedule();
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

  document.addEventListener("click", (e) => {
    const el = e.target.closest && e.target.closest("[dj-click]");
    const live = el && liveFor(el);
    if (!live) return;
    e.preventDefault();
    if (confirmed(el)) live.pushEvent(el.getAttribute("dj-click"), valuesOf(el));
  });

  document.addEventListener("submit", (e) => {
    const form = e.target.closest && e.target.closest("form[dj-submit]");
    const live = form && liveFor(form);
    if (!live) return;
    e.preventDefault();
    if (!confirmed(form)) return;
    const params = Object.assign(formValues(form, e.submitter), valuesOf(form));
    // Files chosen with auto_upload off travel first; the event follows once they are in.
    live.uploads.flush(form).then(() => live.pushEvent(form.getAttribute("dj-submit"), params));
  });

  document.addEventListener("change", (e) => {
    const target = e.target;
    const upload = target.closest && target.closest("input[dj-upload]");
    if (upload && liveFor(upload)) {
      liveFor(upload).uploads.select(upload.getAttribute("dj-upload"), upload.files, upload);
    }
    const el = target.closest && target.closest("[dj-change]");
    const live = el && liveFor(el);
    if (live) live.pushEvent(el.getAttribute("dj-change"), fieldParams(el));
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
      setTimeout(() => live.pushEvent(el.getAttribute("dj-input"), fieldParams(el)), wait),
    );
  });

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
  }

  /* --------------------------------------------------------------- uploads */

  // Chunks travel in runs: one message of as many whole chunks as the window and the server's
  // largest message allow, read from the file just before it is sent. Chromium pays per
  // WebSocket message: 1 MiB runs carry more than 64 KiB messages (docs/performance.md). The
  // page reads the bytes itself (ArrayBuffers, not Blob messages): a file that can no longer be
  // read then fails its own upload (read_failed), where a Blob message would close the socket.
  const FRAME_RUN = 0x02;
  const DEFAULT_MAX_FRAME = 1024 * 1024 + 64;
  const MAX_STREAMING = 3; // per connection, unless the server allows fewer

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

  function formatSize(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
    return (bytes / 1024 / 1024).toFixed(1) + " MB";
  }

  class Uploads {
    constructor(live) {
      this.live = live;
      this.configs = {};
      this.entries = new Map(); // ref -> entry
      this.nextRef = 0;
      this.waiters = [];
      this.maxStreaming = MAX_STREAMING;
      this.maxFrame = DEFAULT_MAX_FRAME; // the server's MAX_FRAME_SIZE, from mounted
    }

    configure(configs) {
      if (configs) this.configs = configs;
    }

    // Set accept/multiple from the slot config on inputs that do not set them themselves.
    bind() {
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
      }
      for (const zone of this.live.root.querySelectorAll("[dj-upload-drop]")) {
        if (!zone.__djustDrop) this.bindDrop(zone);
      }
    }

    bindDrop(zone) {
      zone.__djustDrop = true;
      zone.__djustClasses = zone.__djustClasses || new Set();
      const on = (e) => {
        e.preventDefault();
        zone.classList.add("upload-dragover");
        zone.__djustClasses.add("upload-dragover");
      };
      const off = () => {
        zone.classList.remove("upload-dragover");
        zone.__djustClasses.delete("upload-dragover");
      };
      zone.addEventListener("dragenter", on);
      zone.addEventListener("dragover", on);
      zone.addEventListener("dragleave", (e) => {
        if (!zone.contains(e.relatedTarget)) off();
      });
      zone.addEventListener("drop", (e) => {
        e.preventDefault();
        off();
        if (e.dataTransfer && e.dataTransfer.files.length) {
          this.select(zone.getAttribute("dj-upload-drop"), e.dataTransfer.files, null);
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
          this.fail(probe, "too_many_files", "too many files (at most " + config.max_entries + ")");
          continue;
        }
        if (file.size > config.max_file_size) {
          this.fail(probe, "too_large", file.name + " is larger than " + formatSize(config.max_file_size));
          continue;
        }
        if (!accepts(config.accept, file)) {
          this.fail(probe, "not_accepted", file.name + " is not an accepted file type (" + config.accept + ")");
          continue;
        }
        room -= 1;
        const entry = {
          ref: String(this.nextRef++),
          uploadName: name,
          file: file,
          name: file.name,
          size: file.size,
          chunkSize: config.chunk_size,
          status: "pending",
          sent: 0,
          acked: 0,
          progress: 0,
          reported: -1,
          reportedAt: 0,
        };
        this.entries.set(entry.ref, entry);
        this.preview(entry);
        this.progressItem(entry);
        this.report(entry, true);
        if (config.auto_upload) this.start(entry);
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
      let streaming = 0;
      this.entries.forEach((e) => {
        if (e.status === "registering" || e.status === "uploading") streaming += 1;
      });
      for (const entry of this.entries.values()) {
        if (streaming >= this.maxStreaming) break;
        if (entry.status !== "queued") continue;
        entry.status = "registering";
        this.report(entry, true);
        streaming += 1;
        this.live.send({
          t: "upload_register",
          id: this.live.nextId++,
          name: entry.uploadName,
          ref: entry.ref,
          client_name: entry.name,
          client_type: entry.file.type || "",
          client_size: entry.size,
        });
      }
    }

    receive(m) {
      const entry = this.entries.get(m.ref);
      if (!entry) return;
      switch (m.t) {
        case "upload_registered":
          entry.status = "uploading";
          entry.window = m.window;
          this.report(entry, true);
          this.pump(entry);
          break;
        case "upload_ack":
          entry.acked = m.offset;
          if (m.window) entry.window = m.window; // opened once the first bytes passed
          this.setProgress(entry, entry.size ? Math.floor((m.offset * 100) / entry.size) : 100);
          this.pump(entry);
          break;
        case "upload_complete":
          entry.status = "complete";
          entry.acked = entry.size;
          this.setProgress(entry, 100);
          this.report(entry, true);
          this.settled();
          this.schedule();
          break;
        case "upload_error":
          entry.status = "error";
          entry.error = m.message;
          this.report(entry, true);
          this.fail(entry, m.code, m.message);
          this.settled();
          this.schedule();
          break;
        case "upload_cancelled":
        case "upload_consumed":
          this.remove(entry);
          break;
      }
    }

    // Send runs of chunks while the bytes in flight stay within the server's window. The file
    // is read one run at a time, never whole.
    async pump(entry) {
      if (entry.pumping) return; // the running pump sees new acks after its read
      entry.pumping = true;
      const run = Math.max(1, Math.floor((this.maxFrame - HEADER_SIZE) / entry.chunkSize));
      try {
        while (entry.status === "uploading" && entry.sent < entry.size) {
          // The server enforces the window: offset + length - acked <= window.
          const limit = Math.min(entry.size, entry.acked + entry.window, entry.sent + run * entry.chunkSize);
          const end = limit === entry.size ? limit : entry.sent + Math.floor((limit - entry.sent) / entry.chunkSize) * entry.chunkSize;
          if (end <= entry.sent) break; // not a whole chunk of room: the next ack brings more
          const frame = new Uint8Array(HEADER_SIZE + end - entry.sent);
          frame.set(new Uint8Array(this.header(entry)));
          const reading = this.read(entry, entry.sent, end);
          // Read the next run while this one waits for its bytes and then leaves.
          const next = Math.min(entry.size, end + run * entry.chunkSize);
          entry.ahead = end < entry.size ? this.readAhead(entry, end, next) : null;
          frame.set(new Uint8Array(await reading, 0, end - entry.sent), HEADER_SIZE);
          if (entry.status !== "uploading") break; // cancelled or failed while reading
          this.live.sendBinary(frame);
          entry.sent = end;
        }
      } catch (error) {
        // The file became unreadable (changed, moved, permissions): fail this upload only.
        if (entry.status === "uploading") {
          this.live.send({ t: "upload_cancel", ref: entry.ref });
          entry.status = "error";
          entry.error = "the file could not be read";
          this.report(entry, true);
          this.fail(entry, "read_failed", entry.name + " could not be read: " + error);
          this.settled();
          this.schedule();
        }
      } finally {
        entry.pumping = false;
      }
    }

    // The bytes [start, end) of the file: from the run read ahead when it covers them.
    read(entry, start, end) {
      const ahead = entry.ahead;
      entry.ahead = null;
      if (ahead && ahead.start === start && ahead.end >= end) return ahead.bytes;
      return entry.file.slice(start, end).arrayBuffer();
    }

    readAhead(entry, start, end) {
      const bytes = entry.file.slice(start, end).arrayBuffer();
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

    setProgress(entry, progress) {
      entry.progress = Math.min(100, progress);
      this.report(entry, false);
    }

    // djust:upload:progress on every whole percent, at least every 100 ms, and on status changes.
    report(entry, force) {
      const now = Date.now();
      if (!force && entry.progress === entry.reported && now - entry.reportedAt < 100) return;
      entry.reported = entry.progress;
      entry.reportedAt = now;
      this.renderProgress(entry);
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

    preview(entry) {
      for (const container of this.containers("dj-upload-preview", entry.uploadName)) {
        const item = document.createElement("div");
        item.className = "upload-preview-item";
        item.setAttribute("data-ref", entry.ref);
        if (entry.file.type.startsWith("image/")) {
          entry.url = entry.url || URL.createObjectURL(entry.file);
          const img = document.createElement("img");
          img.src = entry.url;
          img.alt = entry.name;
          item.appendChild(img);
        }
        const label = document.createElement("span");
        label.className = "upload-preview-name";
        label.textContent = entry.name + " (" + formatSize(entry.size) + ")";
        item.appendChild(label);
        container.appendChild(item);
      }
    }

    progressItem(entry) {
      for (const container of this.containers("dj-upload-progress", entry.uploadName)) {
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
        const cancel = document.createElement("button");
        cancel.type = "button";
        cancel.className = "upload-cancel";
        cancel.textContent = "\u00d7";
        cancel.setAttribute("aria-label", "Cancel " + entry.name);
        cancel.addEventListener("click", (e) => {
          e.preventDefault();
          e.stopPropagation();
          this.cancel(entry.ref);
        });
        item.append(label, track, cancel);
        container.appendChild(item);
      }
    }

    renderProgress(entry) {
      for (const item of this.live.root.querySelectorAll('.upload-progress-item[data-ref="' + entry.ref + '"]')) {
        const bar = item.querySelector(".upload-progress-bar");
        bar.style.width = entry.progress + "%";
        bar.setAttribute("aria-valuenow", String(entry.progress));
        item.classList.toggle("upload-complete", entry.status === "complete");
        item.classList.toggle("upload-error", entry.status === "error");
        item.classList.toggle("upload-active", entry.status === "uploading");
        item.setAttribute("data-status", entry.status);
        if (entry.error) item.setAttribute("title", entry.error);
      }
    }

    cancel(ref) {
      const entry = this.entries.get(ref);
      if (!entry) return;
      if (!["pending", "queued", "error"].includes(entry.status)) {
        this.live.send({ t: "upload_cancel", ref: ref });
      }
      entry.status = "cancelled";
      this.report(entry, true);
      this.remove(entry);
    }

    remove(entry) {
      this.entries.delete(entry.ref);
      for (const item of this.live.root.querySelectorAll('[data-ref="' + entry.ref + '"]')) {
        if (item.classList.contains("upload-preview-item") || item.classList.contains("upload-progress-item")) {
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

    settled() {
      this.waiters = this.waiters.filter((w) => {
        if (w.busy()) return true;
        w.resolve();
        return false;
      });
    }

    disconnected() {
      this.entries.forEach((entry) => {
        if (entry.status === "registering" || entry.status === "uploading") {
          entry.status = "error";
          entry.error = "connection lost";
          this.report(entry, true);
          this.fail(entry, "disconnected", "the connection was lost during the upload");
        } else if (entry.status === "complete") {
          // The server dropped the file with the connection; it is gone.
          this.remove(entry);
        }
      });
      this.settled();
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
