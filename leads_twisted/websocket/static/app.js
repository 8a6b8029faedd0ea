// The live page of leads_twisted: one WebSocket to the relay, redrawn once per animation frame.
"use strict";
(() => {
  const WINDOW_MS = 60000;
  const COLORS = ["#2456c9", "#d9480f", "#2b8a3e", "#ae3ec9", "#e67700", "#0c8599", "#c2255c", "#5c940d"];
  const stateBox = document.getElementById("state");
  const rateBox = document.getElementById("rate");
  const tableBody = document.querySelector("#fields tbody");
  const lastBox = document.getElementById("last");
  const canvas = document.getElementById("plot");
  const legend = document.getElementById("legend");
  const form = document.getElementById("command");
  const commandText = document.getElementById("command-text");
  const commandStatus = document.getElementById("command-status");

  const latest = new Map();   // field -> latest value (text)
  const cells = new Map();    // field -> its <td> of the value
  const series = new Map();   // numeric field -> {times: [], values: [], color}
  let pending = [];           // messages not yet drawn
  let frameAsked = false;
  let lastPlain = null;
  let arrivals = [];          // arrival times over the last second, for msg/s
  let socket = null;
  let retryMs = 500;

  function streamUrl() {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  }

  function showState(state, detail) {
    stateBox.className = "state " + state;
    stateBox.dataset.state = state;
    stateBox.textContent = detail ? state + " (" + detail + ")" : state;
  }

  function connect() {
    showState("connecting");
    socket = new WebSocket(streamUrl());
    socket.binaryType = "arraybuffer";
    socket.onopen = () => { retryMs = 500; showState("open"); };
    socket.onmessage = (event) => {
      const text = typeof event.data === "string" ? event.data : new TextDecoder().decode(event.data);
      pending.push(text);
      arrivals.push(performance.now());
      if (!frameAsked) { frameAsked = true; requestAnimationFrame(draw); }
    };
    socket.onclose = (event) => {
      showState("closed", "code " + event.code + (event.reason ? ", " + event.reason : ""));
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    };
  }

  // A message is a JSON object or key=value pairs (separated by ; , & or spaces); anything else is shown as is.
  function fieldsOf(text) {
    const trimmed = text.trim();
    if (trimmed.startsWith("{")) {
      try { return flatten(JSON.parse(trimmed), "", []); } catch (error) { /* not JSON after all */ }
    }
    const pairs = [];
    for (const part of trimmed.split(/[;,&\s]+/)) {
      const at = part.indexOf("=");
      if (at > 0) pairs.push([part.slice(0, at), part.slice(at + 1)]);
    }
    return pairs;
  }

  function flatten(value, prefix, into) {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      for (const [key, inner] of Object.entries(value)) flatten(inner, prefix ? prefix + "." + key : key, into);
    } else if (prefix) {
      into.push([prefix, typeof value === "string" ? value : JSON.stringify(value)]);
    }
    return into;
  }

  function take(text, now) {
    const fields = fieldsOf(text);
    if (!fields.length) { lastPlain = text; return; }
    for (const [name, value] of fields) {
      latest.set(name, value);
      const number = Number(value);
      if (value !== "" && Number.isFinite(number)) {
        let line = series.get(name);
        if (!line) {
          line = { times: [], values: [], color: COLORS[series.size % COLORS.length] };
          series.set(name, line);
        }
        line.times.push(now);
        line.values.push(number);
      }
    }
  }

  // Once per animation frame: fold in every message that came since the last one, then draw once.
  function draw() {
    frameAsked = false;
    const now = performance.now();
    const batch = pending;
    pending = [];
    for (const text of batch) take(text, now);
    while (arrivals.length && arrivals[0] < now - 1000) arrivals.shift();
    rateBox.textContent = arrivals.length + " msg/s";
    drawTable();
    if (lastPlain !== null) lastBox.textContent = lastPlain;
    drawPlot(now);
  }

  function drawTable() {
    for (const [name, value] of latest) {
      let cell = cells.get(name);
      if (!cell) {
        const row = tableBody.insertRow();
        row.dataset.field = name;
        row.insertCell().textContent = name;
        cell = row.insertCell();
        cell.className = "value";
        cells.set(name, cell);
      }
      if (cell.textContent !== value) cell.textContent = value;
    }
  }

  function drawPlot(now) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth, height = canvas.clientHeight;
    if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
    if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
    const context = canvas.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);
    context.strokeStyle = "rgba(128,128,128,.25)";
    context.lineWidth = 1;
    context.fillStyle = "rgba(128,128,128,.9)";
    context.font = "11px system-ui, sans-serif";
    for (let second = 0; second <= 60; second += 10) {  // a line every 10 s, newest at the right
      const x = width - (second * 1000 / WINDOW_MS) * width;
      context.beginPath(); context.moveTo(x, 0); context.lineTo(x, height); context.stroke();
      if (second % 30 === 0) {
        context.textAlign = second === 0 ? "right" : second === 60 ? "left" : "center";
        context.fillText(second === 0 ? "now" : "-" + second + " s", x, height - 1);
      }
    }
    let points = 0;
    legend.textContent = "";
    for (const [name, line] of series) {
      let drop = 0;
      while (drop < line.times.length && line.times[drop] < now - WINDOW_MS) drop++;
      if (drop) { line.times.splice(0, drop); line.values.splice(0, drop); }
      if (!line.values.length) continue;
      // Each field on its own scale, so speed and rpm share the plot; the legend gives the range.
      let low = Infinity, high = -Infinity;
      for (const value of line.values) { if (value < low) low = value; if (value > high) high = value; }
      const span = high - low || 1;
      context.strokeStyle = line.color;
      context.lineWidth = 2;
      context.beginPath();
      for (let i = 0; i < line.values.length; i++) {
        const x = width - ((now - line.times[i]) / WINDOW_MS) * width;
        const y = height - 6 - ((line.values[i] - low) / span) * (height - 12);
        if (i === 0) context.moveTo(x, y); else context.lineTo(x, y);
      }
      context.stroke();
      points += line.values.length;
      const item = document.createElement("li");
      const swatch = document.createElement("i");
      swatch.style.background = line.color;
      item.append(swatch, name + " " + low + " … " + high);
      legend.append(item);
    }
    canvas.dataset.points = String(points);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = commandText.value.trim();
    if (!text) return;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      commandStatus.textContent = "not connected: " + text + " not sent";
      return;
    }
    socket.send(text);
    commandStatus.textContent = "sent: " + text;
    commandText.value = "";
  });

  // The plot moves on by itself while no message comes.
  setInterval(() => { if (!frameAsked) { frameAsked = true; requestAnimationFrame(draw); } }, 500);
  connect();
})();
