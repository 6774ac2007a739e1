// TOM's audio worklet: microphone → 16 kHz s16le frames, and 16 kHz s16le → speaker.
//
// Runs on the audio rendering thread at the context's rate (often 48 kHz, sometimes 44.1 kHz).
// Both directions resample with linear interpolation guarded by a windowed-sinc low-pass:
// before decimating (so nothing above 8 kHz folds into the speech band) and after
// interpolating (so the images linear interpolation leaves above 8 kHz are removed).
//
// Messages in:  ArrayBuffer (16 kHz s16le PCM to play), {type: "clear"} (drop all buffered audio).
// Messages out: ArrayBuffer of FRAME_BYTES (20 ms captured), {type: "stats", ...} twice a second.

const PCM_RATE = 16000;
const FRAME_SAMPLES = PCM_RATE / 50;            // 20 ms
const START_SAMPLES = PCM_RATE * 60 / 1000;     // begin playing once 60 ms are buffered...
const START_WAIT_S = 0.1;                       // ...or once a shorter tail has waited 100 ms
const BUFFER_SAMPLES = PCM_RATE * 30;           // 30 s; on overflow the oldest audio is dropped
const CUTOFF_HZ = 7200;                         // below 8 kHz, the Nyquist frequency of 16 kHz
const TAPS = 63;

// Low-pass FIR taps (Blackman-windowed sinc, unity gain at DC) for a signal at `rate`.
function lowPassTaps(rate, cutoffHz, taps) {
  const fc = cutoffHz / rate;
  const middle = (taps - 1) / 2;
  const h = new Float32Array(taps);
  let sum = 0;
  for (let i = 0; i < taps; i++) {
    const n = i - middle;
    const sinc = n === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * n) / (Math.PI * n);
    const window = 0.42 - 0.5 * Math.cos(2 * Math.PI * i / (taps - 1)) +
      0.08 * Math.cos(4 * Math.PI * i / (taps - 1));
    h[i] = sinc * window;
    sum += h[i];
  }
  for (let i = 0; i < taps; i++) h[i] /= sum;
  return h;
}

// A streaming FIR filter: one sample in, one sample out, state kept across calls.
class Fir {
  constructor(taps) {
    this.taps = taps;
    this.history = new Float32Array(taps.length * 2);   // doubled so a window is always contiguous
    this.at = 0;
  }

  push(x) {
    const n = this.taps.length;
    this.history[this.at] = x;
    this.history[this.at + n] = x;
    this.at = (this.at + 1) % n;
    let y = 0;
    for (let i = 0; i < n; i++) y += this.taps[i] * this.history[this.at + i];
    return y;
  }
}

// Context rate → 16 kHz: low-pass, then linear interpolation at fractional positions.
class Downsampler {
  constructor(inRate) {
    this.step = inRate / PCM_RATE;              // input samples per output sample
    this.filter = inRate > PCM_RATE ? new Fir(lowPassTaps(inRate, CUTOFF_HZ, TAPS)) : null;
    this.previous = 0;
    this.next = 0;                              // position of the next output, in input samples,
                                                // counted from `previous`
  }

  // Calls emit(sample) for every 16 kHz sample the input block completes.
  process(block, emit) {
    for (let i = 0; i < block.length; i++) {
      const current = this.filter ? this.filter.push(block[i]) : block[i];
      // Outputs that fall between `previous` (at 0) and `current` (at 1).
      while (this.next <= 1) {
        emit(this.previous + (current - this.previous) * this.next);
        this.next += this.step;
      }
      this.next -= 1;
      this.previous = current;
    }
  }
}

// 16 kHz samples in a ring, read out at the context rate by linear interpolation.
class Player {
  constructor(outRate) {
    this.step = PCM_RATE / outRate;             // 16 kHz samples per output sample
    this.filter = outRate > PCM_RATE ? new Fir(lowPassTaps(outRate, CUTOFF_HZ, TAPS)) : null;
    this.ring = new Float32Array(BUFFER_SAMPLES);
    this.head = 0;                              // next sample to read
    this.size = 0;
    this.playing = false;
    this.waitingSince = null;
    this.previous = 0;
    this.current = 0;
    this.phase = 0;                             // position between previous and current
    this.playedSamples = 0;                     // 16 kHz samples consumed
    this.underruns = 0;
    this.droppedSamples = 0;
  }

  push(buffer) {
    const view = new DataView(buffer);
    const count = buffer.byteLength >> 1;
    for (let i = 0; i < count; i++) {
      if (this.size === BUFFER_SAMPLES) {       // overflow: drop the oldest sample
        this.head = (this.head + 1) % BUFFER_SAMPLES;
        this.size--;
        this.droppedSamples++;
      }
      this.ring[(this.head + this.size) % BUFFER_SAMPLES] = view.getInt16(i * 2, true) / 32768;
      this.size++;
    }
  }

  clear() {
    this.head = 0;
    this.size = 0;
    this.playing = false;
    this.waitingSince = null;
    this.previous = 0;
    this.current = 0;
    this.phase = 0;                             // the filter's state is kept: it smooths
  }                                             // the cut into a ~1 ms ramp

  // Fills `out` with audio, or silence while buffering.
  render(out, now) {
    if (!this.playing) this.maybeStart(now);
    for (let i = 0; i < out.length; i++) {
      let sample = 0;
      if (this.playing) {
        while (this.phase >= 1 && this.size > 0) {
          this.previous = this.current;
          this.current = this.ring[this.head];
          this.head = (this.head + 1) % BUFFER_SAMPLES;
          this.size--;
          this.playedSamples++;
          this.phase -= 1;
        }
        if (this.phase >= 1) {                  // ran dry: fade nothing, just wait for more
          this.playing = false;
          this.underruns++;
          this.phase = 1;
        } else {
          sample = this.previous + (this.current - this.previous) * this.phase;
          this.phase += this.step;
        }
      }
      out[i] = this.filter ? this.filter.push(sample) : sample;
    }
  }

  maybeStart(now) {
    if (this.size === 0) {
      this.waitingSince = null;
      return;
    }
    if (this.waitingSince === null) this.waitingSince = now;
    if (this.size >= START_SAMPLES || now - this.waitingSince >= START_WAIT_S) {
      this.playing = true;
      this.waitingSince = null;
      if (this.phase < 1) this.phase = 1;       // start on a fresh sample
    }
  }
}

if (typeof AudioWorkletProcessor !== "undefined") {
  class TomAudioProcessor extends AudioWorkletProcessor {
    constructor() {
      super();
      this.downsampler = new Downsampler(sampleRate);
      this.player = new Player(sampleRate);
      this.frame = new ArrayBuffer(FRAME_SAMPLES * 2);
      this.frameView = new DataView(this.frame);
      this.frameFill = 0;
      this.lastStats = 0;
      this.port.onmessage = (event) => this.onMessage(event.data);
    }

    onMessage(data) {
      if (data instanceof ArrayBuffer) this.player.push(data);
      else if (data && data.type === "clear") this.player.clear();
    }

    emit(sample) {
      const clipped = Math.max(-1, Math.min(1, sample));
      this.frameView.setInt16(this.frameFill * 2, Math.round(clipped * 32767), true);
      if (++this.frameFill === FRAME_SAMPLES) {
        this.port.postMessage(this.frame, [this.frame]);
        this.frame = new ArrayBuffer(FRAME_SAMPLES * 2);
        this.frameView = new DataView(this.frame);
        this.frameFill = 0;
      }
    }

    process(inputs, outputs) {
      const input = inputs[0];
      if (input && input.length > 0) {
        // Mix down to mono; getUserMedia asked for one channel, but a device may give more.
        let mono = input[0];
        if (input.length > 1) {
          mono = new Float32Array(input[0].length);
          for (const channel of input) {
            for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / input.length;
          }
        }
        this.downsampler.process(mono, (sample) => this.emit(sample));
      }
      const output = outputs[0];
      if (output && output.length > 0) {
        this.player.render(output[0], currentTime);
        for (let c = 1; c < output.length; c++) output[c].set(output[0]);
      }
      if (currentTime - this.lastStats >= 0.5) {
        this.lastStats = currentTime;
        this.port.postMessage({
          type: "stats",
          playedMs: Math.round(this.player.playedSamples / 16),
          bufferedMs: Math.round(this.player.size / 16),
          underruns: this.player.underruns,
          droppedMs: Math.round(this.player.droppedSamples / 16),
        });
      }
      return true;
    }
  }

  registerProcessor("tom-audio", TomAudioProcessor);
}

if (typeof module !== "undefined") {
  module.exports = { Downsampler, Player, lowPassTaps, PCM_RATE };
}
