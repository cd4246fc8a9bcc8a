// Input and output side by side, kept in sync: one transport (play/pause, seek, frame step) drives
// every player, the output being the clock; a third copy of the input lies over the output,
// clipped by the A/B wipe slider. Interpolation is judged by eye, so the frame step matters most.

const DRIFT_S = 0.04; // re-align a follower that is further than this from the clock

export class Compare {
  constructor(root) {
    this.root = root;
    this.clock = root.querySelector("#video-out");
    this.followers = [root.querySelector("#video-in"), root.querySelector("#video-wipe")];
    this.wipeVideo = root.querySelector("#video-wipe");
    this.wipeLine = root.querySelector("#wipe-line");
    this.wipe = root.querySelector("#wipe");
    this.seek = root.querySelector("#seek");
    this.playButton = root.querySelector("#play");
    this.time = root.querySelector("#time");
    this.loop = root.querySelector("#loop");
    this.fps = 30;
    this.seeking = false;
    this.bind();
  }

  get players() {
    return [this.clock, ...this.followers];
  }

  /** Show `inputSrc` against `outputSrc`; `fps` is the output's rate (the frame-step unit). */
  load(inputSrc, outputSrc, fps) {
    this.pause();
    this.fps = fps > 0 ? fps : 30;
    this.followers.forEach((v) => { v.src = inputSrc; });
    this.clock.src = outputSrc;
    this.players.forEach((v) => v.load());
    this.setWipe(Number(this.wipe.value));
    this.render();
  }

  bind() {
    this.playButton.addEventListener("click", () => (this.clock.paused ? this.play() : this.pause()));
    this.root.querySelector("#step-back").addEventListener("click", () => this.step(-1));
    this.root.querySelector("#step-fwd").addEventListener("click", () => this.step(1));
    this.seek.addEventListener("input", () => {
      const d = this.duration();
      if (d) this.seekTo((Number(this.seek.value) / 1000) * d);
    });
    this.wipe.addEventListener("input", () => this.setWipe(Number(this.wipe.value)));
    this.clock.addEventListener("timeupdate", () => { this.align(); this.render(); });
    this.clock.addEventListener("seeked", () => this.render());
    this.clock.addEventListener("loadedmetadata", () => {
      const { videoWidth: w, videoHeight: h } = this.clock; // frames sized to the video: no bars
      if (w && h) this.root.querySelectorAll(".frame").forEach((f) => { f.style.aspectRatio = `${w} / ${h}`; });
      this.render();
    });
    this.clock.addEventListener("play", () => this.render());
    this.clock.addEventListener("pause", () => this.render());
    this.clock.addEventListener("ended", () => {
      if (this.loop.checked) {
        this.seekTo(0);
        this.play();
      } else {
        this.pause();
      }
    });
    this.followers.forEach((v) => v.addEventListener("ended", () => { if (!this.clock.ended) v.pause(); }));
    this.root.addEventListener("keydown", (e) => this.onKey(e));
  }

  onKey(e) {
    const t = e.target;
    const typing = t instanceof HTMLInputElement && (t.type === "text" || t.type === "number" || t.type === "url");
    if (typing || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "k" || (e.key === " " && t instanceof HTMLVideoElement)) {
      this.clock.paused ? this.play() : this.pause();
    } else if (e.key === "," || e.key === ".") {
      this.step(e.key === "," ? -1 : 1);
    } else if ((e.key === "ArrowLeft" || e.key === "ArrowRight") && !(t instanceof HTMLInputElement)) {
      this.wipe.value = String(Number(this.wipe.value) + (e.key === "ArrowLeft" ? -5 : 5));
      this.setWipe(Number(this.wipe.value));
    } else {
      return;
    }
    e.preventDefault();
  }

  duration() {
    const d = this.clock.duration;
    return Number.isFinite(d) ? d : 0;
  }

  play() {
    if (this.clock.ended) this.seekTo(0);
    this.align(true);
    this.players.forEach((v) => v.play().catch(() => {}));
  }

  pause() {
    this.players.forEach((v) => v.pause());
    this.align(true);
  }

  seekTo(t) {
    const d = this.duration();
    const clamped = Math.max(0, d ? Math.min(t, d) : t);
    this.players.forEach((v) => { v.currentTime = clamped; });
    this.render();
  }

  /** One output frame back or forward, paused: lands on the middle of the frame, not its edge. */
  step(direction) {
    this.pause();
    const frame = Math.floor(this.clock.currentTime * this.fps + 1e-6) + direction;
    const last = Math.max(0, Math.ceil(this.duration() * this.fps - 1e-6) - 1);
    const target = Math.min(Math.max(frame, 0), last);
    this.seekTo(target === 0 ? 0 : (target + 0.5) / this.fps);
  }

  align(force = false) {
    const t = this.clock.currentTime;
    for (const v of this.followers) {
      if (!Number.isFinite(v.duration)) continue;
      const target = Math.min(t, v.duration);
      if (force || Math.abs(v.currentTime - target) > DRIFT_S) v.currentTime = target;
      if (!this.clock.paused && v.paused && !v.ended && t < v.duration) v.play().catch(() => {});
    }
  }

  setWipe(percent) {
    const p = Math.min(100, Math.max(0, percent));
    this.wipeVideo.style.clipPath = `inset(0 ${100 - p}% 0 0)`;
    this.wipeLine.style.left = `${p}%`;
    this.wipeLine.hidden = p <= 0 || p >= 100;
    this.wipe.setAttribute("aria-valuetext", `${p}% input, ${100 - p}% output`);
  }

  render() {
    const t = this.clock.currentTime || 0;
    const d = this.duration();
    this.playButton.textContent = this.clock.paused ? "Play" : "Pause";
    this.playButton.setAttribute("aria-label", this.clock.paused ? "Play both" : "Pause both");
    if (d) this.seek.value = String(Math.round((t / d) * 1000));
    this.seek.setAttribute("aria-valuetext", `${t.toFixed(3)} of ${d.toFixed(3)} seconds`);
    this.time.textContent = `${t.toFixed(3)} / ${d.toFixed(3)} s · frame ${Math.min(Math.floor(t * this.fps + 1e-6), Math.max(0, Math.ceil(d * this.fps - 1e-6) - 1)) + 1}`;
  }
}
