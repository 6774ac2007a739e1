"""Every Prometheus metric TOM exports, behind intention-named functions.

Names follow the seeds where they fit Prometheus conventions (base unit seconds; counters end
in ``_total``, which prometheus_client appends). Tests build a fresh :class:`Metrics` on their
own ``CollectorRegistry``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Sub-second resolution where the targets are (barge-in 120 ms, e2e 800 ms), seconds beyond.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.12, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6,
                   0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()

        def histogram(name: str, doc: str) -> Histogram:
            return Histogram(name, doc, registry=self.registry, buckets=LATENCY_BUCKETS)

        self.stt_latency = histogram("tom_stt_latency_seconds",
                                     "Speech-to-text time for one utterance.")
        self.llm_latency = histogram("tom_llm_latency_seconds",
                                     "Time from LLM request to its first token.")
        self.queue_wait = Histogram(
            "tom_pipeline_queue_wait_seconds",
            "Time an inference job waited for a CPU slot and a model thread, by stage.",
            ["stage"], registry=self.registry, buckets=LATENCY_BUCKETS)
        self.tts_latency = histogram("tom_tts_latency_seconds",
                                     "Time from an answer's first sentence to its synthesised "
                                     "audio (audio said before is not counted).")
        self.e2e_latency = histogram(
            "tom_pipeline_e2e_latency_seconds",
            "From the end of the caller's speech to the first audio of the answer.")
        self.barge_in_latency = histogram(
            "tom_telephony_barge_in_latency_seconds",
            "From the barge-in decision to the assistant's audio being stopped.")
        self.holding_phrases = Counter(
            "tom_pipeline_holding_phrases",
            "Times a caller heard the holding phrase because their answer could not start "
            "within TOM_MAX_ANSWER_WAIT_S.", registry=self.registry)
        self.spoken_cache = Counter(
            "tom_tts_cache", "Sentences to say, by whether their audio was said before and "
            "kept (hit) or had to be synthesised (miss).", ["result"], registry=self.registry)
        self.loop_lag = histogram(
            "tom_event_loop_lag_seconds",
            "How late the event loop ran a 50 ms timer (time it was held by blocking work).")
        self.backpressure = Counter(
            "tom_pipeline_backpressure", "Times a producer had to wait for a full audio queue.",
            registry=self.registry)
        self.errors = Counter("tom_errors", "Errors by component.", ["component"],
                              registry=self.registry)
        self.turns = Counter("tom_pipeline_turns", "Caller turns by outcome.", ["outcome"],
                             registry=self.registry)

        self.active_calls = Gauge("tom_telephony_active_calls", "Calls TOM is handling now.",
                                  registry=self.registry)
        self.calls = Counter("tom_telephony_calls", "Finished calls by outcome (answered, "
                             "transferred, abandoned, failed, rejected).", ["outcome"],
                             registry=self.registry)
        self.calls_failed = Counter("tom_telephony_calls_failed",
                                    "Calls that ended because TOM or FreeSWITCH failed.",
                                    registry=self.registry)
        self.call_duration = Histogram(
            "tom_telephony_call_duration_seconds", "Length of calls TOM handled.",
            registry=self.registry,
            buckets=(5, 10, 20, 30, 60, 120, 180, 300, 600, 900, 1800))
        self.esl_link_up = Gauge("tom_telephony_esl_link_up",
                                 "1 while the inbound ESL connection to FreeSWITCH is up.",
                                 registry=self.registry)

        self.gateway_connections = Gauge("tom_gateway_connections",
                                         "Browser conversations open now.",
                                         registry=self.registry)
        self.gateway_refusals = Counter(
            "tom_gateway_refusals", "Browser connections refused or closed by TOM, by reason.",
            ["reason"], registry=self.registry)

        self.recordings = Counter("tom_recordings", "Call recordings by how they ended "
                                  "(complete, failed).", ["result"], registry=self.registry)
        self.recording_frames_dropped = Counter(
            "tom_recording_frames_dropped",
            "Audio frames left out of a recording because its writer fell behind.",
            registry=self.registry)
        self.consent = Counter("tom_recording_consent", "Answers to the consent question "
                               "(given, refused, no_answer).", ["answer"],
                               registry=self.registry)
        self.qc_checks = Counter("tom_audio_qc_checks", "Audio quality checks of recordings, "
                                 "per channel, by check and result.", ["check", "result"],
                                 registry=self.registry)
        self.qc_rms = Histogram("tom_audio_qc_rms", "Speech RMS of recorded channels "
                                "(16-bit sample units).", ["channel"], registry=self.registry,
                                buckets=(100, 300, 600, 1000, 2000, 4000, 6000, 9000, 16000))
        self.qc_snr = Histogram("tom_audio_qc_snr_db", "Estimated SNR of recorded channels.",
                                ["channel"], registry=self.registry,
                                buckets=(5, 10, 15, 20, 25, 30, 40, 60, 99))
        self.reward = Gauge("tom_rl_reward", "Each variant's posterior mean reward (0-1; the "
                            "seeds' -1..1 scale is 2 * reward - 1).", ["variant"],
                            registry=self.registry)
        self.variant_selected = Counter("tom_rl_variant_selected", "Calls given each variant.",
                                        ["variant"], registry=self.registry)
        self.blacklisted = Gauge("tom_rl_blacklisted_variants",
                                 "Variants the deploy guard has blacklisted.",
                                 registry=self.registry)
        self.exploration = Gauge("tom_rl_exploration_ratio", "At the last choice, the chance "
                                 "that a call went to a variant other than the likeliest.",
                                 registry=self.registry)
        self.feedback = Counter("tom_rl_feedback", "Callers' ratings, by kind (rating, thumbs, "
                                "none: asked and not answered).", ["kind"],
                                registry=self.registry)
        self.tool_calls = Counter("tom_tool_calls", "Tool lookups (catalogue, shop facts, "
                                  "order status), by tool and data source.",
                                  ["tool", "source"], registry=self.registry)
        self.tool_latency = Histogram("tom_tool_latency_seconds", "Time one tool lookup took.",
                                      ["tool", "source"], registry=self.registry,
                                      buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1,
                                               0.25, 0.5, 1.0, 2.0, 5.0))
        self.tool_failures = Counter("tom_tool_calls_failed", "Tool lookups that failed or "
                                     "timed out (the caller was offered a colleague).",
                                     ["tool", "source"], registry=self.registry)

    def record_call(self, outcome: str, duration_s: float) -> None:
        self.calls.labels(outcome=outcome).inc()
        if outcome == "failed":
            self.calls_failed.inc()
        if outcome != "rejected":
            self.call_duration.observe(duration_s)

    def record_error(self, component: str) -> None:
        self.errors.labels(component=component).inc()

    def record_turn(self, outcome: str) -> None:
        self.turns.labels(outcome=outcome).inc()

    def record_qc(self, report: dict) -> None:
        """One recording's tomctl.recording.qc report."""
        for channel in report["channels"]:
            name = ("caller", "tom")[channel["channel"]] if channel["channel"] < 2 else "other"
            for check, result in channel["checks"].items():
                self.qc_checks.labels(check=check, result=result["verdict"]).inc()
            self.qc_rms.labels(channel=name).observe(channel["checks"]["rms"]["value"])
            self.qc_snr.labels(channel=name).observe(channel["checks"]["snr_db"]["value"])

    def record_backpressure(self) -> None:
        self.backpressure.inc()
