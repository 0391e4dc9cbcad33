"""The sync engine: desired state -> plan -> work items -> apply -> history, plus read-back reconciliation.

- desired:   DesiredContact from a profile view and the segments config (SyncConfig), build_desired
- state:     SyncState, what the destination last confirmed per contact (stored by segflow.store.sync_state)
- planner:   plan / plan_contact / estimate_calls (pure)
- dryrun:    render_plan, the plan as a report, calling nothing
- workitems: chunk_plan, WorkItem (JSON), WorkItemStore (S3) and WorkItemPointer (the SQS message)
- adapters:  MailchimpAdapter / HubSpotAdapter around the destination clients (provisioning, memberships)
- applier:   apply(work_item, adapter, state_store, guard, suppressions, now) -> ApplyReport
- history:   summarise reports into one JSON line per run and destination
- reconcile: destination read-back -> consent opt-outs and state corrections
- ports, guards: the protocols the lead wires, and a Guard built from fresh views and the consent checks
Nothing here imports pandas, numpy or scikit-learn.
"""

from __future__ import annotations

from segflow.lazy import lazy_exports

_EXPORTS = {
    "ApplyReport": "segflow.sync.applier",
    "ContactOutcome": "segflow.sync.applier",
    "ContactPlan": "segflow.sync.planner",
    "DesiredContact": "segflow.sync.desired",
    "DestinationAdapter": "segflow.sync.adapters",
    "FieldRoute": "segflow.sync.desired",
    "Guard": "segflow.sync.ports",
    "HUBSPOT": "segflow.sync.limits",
    "HubSpotAdapter": "segflow.sync.adapters",
    "MAILCHIMP": "segflow.sync.limits",
    "MailchimpAdapter": "segflow.sync.adapters",
    "Observation": "segflow.sync.reconcile",
    "Plan": "segflow.sync.planner",
    "Reconciliation": "segflow.sync.reconcile",
    "RecordingSuppressions": "segflow.sync.ports",
    "RunSummary": "segflow.sync.history",
    "SegmentRoute": "segflow.sync.desired",
    "SuppressionSink": "segflow.sync.ports",
    "SyncConfig": "segflow.sync.desired",
    "SyncState": "segflow.sync.state",
    "SyncStateStore": "segflow.sync.ports",
    "WorkItem": "segflow.sync.workitems",
    "WorkItemPointer": "segflow.sync.workitems",
    "WorkItemStore": "segflow.sync.workitems",
    "apply": "segflow.sync.applier",
    "apply_all": "segflow.sync.applier",
    "build_desired": "segflow.sync.desired",
    "chunk_plan": "segflow.sync.workitems",
    "estimate_calls": "segflow.sync.planner",
    "guard_from_views": "segflow.sync.guards",
    "observe_hubspot": "segflow.sync.reconcile",
    "observe_mailchimp": "segflow.sync.reconcile",
    "plan": "segflow.sync.planner",
    "plan_contact": "segflow.sync.planner",
    "reconcile": "segflow.sync.reconcile",
    "render_plan": "segflow.sync.dryrun",
    "summarise": "segflow.sync.history",
    "to_jsonl": "segflow.sync.history",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
