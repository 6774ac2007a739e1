// TOM's browser test page: microphone → WebSocket → TOM, and TOM's voice back.
//
// The audio itself (resampling, framing, jitter buffer) lives in audio-worklet.js; this file
// owns the WebSocket, the protocol and the page. Server text only ever reaches the page
// through textContent.
"use strict";

(() => {
  // Past this much unsent data (about 1 s of audio) new microphone frames are dropped rather
  // than queued: a stalled connection must not build up latency.
  const MAX_UNSENT_BYTES = 32000;

  const CLOSE_MEANINGS = {
    1000: "closed",
    1001: "idle for too long",
    1002: "protocol error",
    1003: "bad data",
    1006: "connection lost",
    1007: "malformed message",
    1008: "policy violation",
    1009: "message too big",
    1011: "server error",
    1013: "too many connections, try again later",
    4401: "unauthorized",
    4408: "authentication timed out",
  };

  const page = {
    state: "idle",              // idle | connecting | ready | closed
    audioBytesReceived: 0,
    audioBytesSent: 0,
    framesDropped: 0,
    transcripts: [],
    replies: [],
    events: [],                 // every event's type, in order (for tests and debugging)
    contextRate: null,          // the AudioContext's sample rate
    playback: {},               // the worklet's latest stats
    closeCode: null,
    closeReason: "",
    rated: false,               // a thumb was given in this conversation
  };
  window.tomPage = page;

  const $ = (id) => document.getElementById(id);
  let socket = null;
  let audio = null;             // {context, node, stream}
  let replyLines = [];          // the .tom lines of the reply in progress

  function setState(state) {
    page.state = state;
    const live = state === "connecting" || state === "ready";
    $("connect").disabled = live;
    $("token").disabled = live;
    $("record").disabled = live;
    $("hangup").disabled = !live;
    $("interrupt").disabled = state !== "ready";
    $("thumbs-up").disabled = state !== "ready" || page.rated;
    $("thumbs-down").disabled = state !== "ready" || page.rated;
  }

  function setStatus(text, bad = false) {
    const status = $("status");
    status.textContent = text;
    status.classList.toggle("bad", bad);
  }

  function addLine(kind, text) {
    const log = $("log");
    const line = document.createElement("p");
    line.className = kind;
    line.textContent = text;
    log.append(line);
    log.scrollTop = log.scrollHeight;
    return line;
  }

  function formatLatencies(latencies) {
    const parts = [["e2e", "e2e_ms"], ["stt", "stt_ms"], ["llm", "llm_first_token_ms"],
                   ["tts", "tts_first_audio_ms"]];
    return parts
      .filter(([, key]) => typeof latencies[key] === "number")
      .map(([label, key]) => `${label} ${Math.round(latencies[key])} ms`)
      .join(" · ");
  }

  // -- audio ---------------------------------------------------------------------------------

  async function startAudio() {
    const context = new AudioContext({ latencyHint: "interactive" });
    page.contextRate = context.sampleRate;
    await context.audioWorklet.addModule("/audio-worklet.js");
    const node = new AudioWorkletNode(context, "tom-audio", {
      numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
    });
    node.port.onmessage = (event) => {
      if (event.data instanceof ArrayBuffer) sendAudio(event.data);
      else if (event.data && event.data.type === "stats") page.playback = event.data;
    };
    node.connect(context.destination);
    let stream = null;
    try {
      // The browser's own echo canceller keeps TOM's voice out of the microphone, so
      // TOM does not interrupt itself on a laptop's speakers.
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true,
                 autoGainControl: true },
      });
      context.createMediaStreamSource(stream).connect(node);
    } catch (err) {
      // TOM can still be heard (the greeting), just not spoken to.
      setStatus(`Microphone unavailable (${err.name}); you will only hear TOM.`, true);
    }
    if (context.state !== "running") {
      // Without a user gesture (autoconnect in an ordinary browser) audio waits for a click.
      context.resume();
      document.addEventListener("click", () => context.resume(), { once: true });
      context.onstatechange = () => {
        if (context.state === "running" && page.state === "ready") {
          setStatus("Connected. Speak to TOM.");
        }
      };
    }
    return { context, node, stream };
  }

  function stopAudio() {
    if (!audio) return;
    if (audio.stream) audio.stream.getTracks().forEach((track) => track.stop());
    audio.node.port.onmessage = null;
    audio.context.close();
    audio = null;
  }

  function sendAudio(frame) {
    if (page.state !== "ready" || !socket || socket.readyState !== WebSocket.OPEN) return;
    if (socket.bufferedAmount > MAX_UNSENT_BYTES) {
      page.framesDropped++;
      return;
    }
    socket.send(frame);
    page.audioBytesSent += frame.byteLength;
  }

  function playAudio(buffer) {
    page.audioBytesReceived += buffer.byteLength;
    if (audio) audio.node.port.postMessage(buffer, [buffer]);
  }

  function clearPlayback() {
    if (audio) audio.node.port.postMessage({ type: "clear" });
  }

  // -- protocol --------------------------------------------------------------------------------

  async function connect() {
    if (socket) return;
    const token = $("token").value;
    const record = $("record").checked;
    Object.assign(page, { closeCode: null, closeReason: "", rated: false });
    setState("connecting");
    setStatus("Starting audio…");
    try {
      audio = await startAudio();
    } catch (err) {
      setState("closed");
      setStatus(`Audio could not start: ${err.name}: ${err.message}`, true);
      return;
    }
    if (page.state !== "connecting") {                  // hung up meanwhile
      stopAudio();
      return;
    }
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}/ws`);
    socket.binaryType = "arraybuffer";
    socket.onopen = () => {
      // The token travels in the first message, never in the URL (URLs end up in logs).
      // Consent to recording is the caller's own choice: unticked, nothing is recorded.
      socket.send(JSON.stringify({ type: "auth", token, record }));
      setStatus("Authenticating…");
    };
    socket.onmessage = (event) => {
      if (typeof event.data === "string") onEvent(event.data);
      else playAudio(event.data);
    };
    socket.onclose = (event) => onClosed(event.code, event.reason);
  }

  function hangUp() {
    if (socket) socket.close(1000, "hang up");
    else onClosed(1000, "hang up");
  }

  function interrupt() {
    clearPlayback();                                    // stop at once; the server confirms
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "interrupt" }));
    }
  }

  // A thumb up or down rates the whole conversation, once; TOM learns from it which of its
  // variants callers like.
  function rate(value) {
    if (page.rated || !socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({ type: "feedback", value }));
    page.rated = true;
    setState(page.state);
    addLine("note", value === "up" ? "Thanks for the thumbs up." : "Thanks, noted.");
  }

  function onClosed(code, reason) {
    socket = null;
    stopAudio();
    Object.assign(page, { closeCode: code, closeReason: reason });
    setState("closed");
    setStatus(`Disconnected (${code}): ${reason || CLOSE_MEANINGS[code] || "closed"}.`,
              code !== 1000);
  }

  function onEvent(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch (err) {
      console.warn("TOM sent malformed JSON", err);
      return;
    }
    page.events.push(message.type);
    const handler = HANDLERS[message.type];
    if (handler) handler(message);
  }

  const HANDLERS = {
    ready() {
      setState("ready");
      const waiting = audio && audio.context.state !== "running";
      setStatus(waiting ? "Connected. Click the page to start audio." : "Connected. Speak to TOM.");
    },
    speech_started() {
      setStatus("Listening…");
    },
    transcript(message) {
      page.transcripts.push(message.text);
      addLine("you", message.text);
    },
    transcript_dropped() {
      addLine("note", "TOM did not catch that.");
      setStatus("Connected. Speak to TOM.");
    },
    reply_text(message) {
      page.replies.push(message.text);
      replyLines.push(addLine("tom", message.text));
    },
    reply_audio(message) {
      setStatus(`TOM is speaking (answered ${Math.round(message.e2e_ms)} ms after you stopped).`);
    },
    barge_in(message) {
      addLine("note", `You interrupted TOM (${Math.round(message.latency_ms)} ms to stop).`);
    },
    clear() {
      clearPlayback();
    },
    reply_done(message) {
      if (message.interrupted) replyLines.forEach((line) => line.classList.add("interrupted"));
      replyLines = [];
      const latencies = formatLatencies(message.latencies || {});
      if (latencies) $("latencies").textContent = latencies;
    },
    turn_ended() {
      setStatus("Connected. Your turn.");
    },
    error(message) {
      addLine("note", `TOM had a problem (${message.component}) and answered with a fallback.`);
    },
  };

  // -- wiring ------------------------------------------------------------------------------------

  $("controls").addEventListener("submit", (event) => {
    event.preventDefault();
    connect();
  });
  $("hangup").addEventListener("click", hangUp);
  $("interrupt").addEventListener("click", interrupt);
  $("thumbs-up").addEventListener("click", () => rate("up"));
  $("thumbs-down").addEventListener("click", () => rate("down"));
  setState("idle");

  if (new URLSearchParams(location.search).get("autoconnect") === "1") connect();
})();
