"""Embed streamal in your own loop: decide per record, learn when a label comes back.

Run: python examples/embed.py
"""

from river.datasets import synth

from streamal import ActiveLearner, Record

learner = ActiveLearner(strategy="split", budget=0.05)  # 5 % of records get a label
waiting = {}  # request id -> true label: stands in for your annotation queue

for i, (x, y) in enumerate(synth.Agrawal(seed=1).take(20_000)):
    decision = learner.decide(Record(id=str(i), features=x))
    if decision.query:
        waiting[decision.request_id] = y  # send the request to your annotators
    if i % 100 == 0:  # labels come back late, in batches, in any order
        for request_id, label in waiting.items():
            learner.learn(request_id, label)
        waiting.clear()

print(
    f"{learner.n_records} records, {learner.n_queries} label requests, "
    f"accuracy on labelled records ~{learner.weighted_accuracy:.3f}, "
    f"{learner.drift_detections} drifts"
)
