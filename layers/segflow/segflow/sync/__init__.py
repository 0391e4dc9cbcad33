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

from segflow.sync.adapters import DestinationAdapter, HubSpotAdapter, MailchimpAdapter
from segflow.sync.applier import ApplyReport, ContactOutcome, apply, apply_all
from segflow.sync.desired import DesiredContact, FieldRoute, SegmentRoute, SyncConfig, build_desired
from segflow.sync.dryrun import render_plan
from segflow.sync.guards import guard_from_views
from segflow.sync.history import RunSummary, summarise, to_jsonl
from segflow.sync.limits import HUBSPOT, MAILCHIMP
from segflow.sync.planner import ContactPlan, Plan, estimate_calls, plan, plan_contact
from segflow.sync.ports import Guard, RecordingSuppressions, SuppressionSink, SyncStateStore
from segflow.sync.reconcile import Observation, Reconciliation, observe_hubspot, observe_mailchimp, reconcile
from segflow.sync.state import SyncState
from segflow.sync.workitems import WorkItem, WorkItemPointer, WorkItemStore, chunk_plan

__all__ = [
    "HUBSPOT",
    "MAILCHIMP",
    "ApplyReport",
    "ContactOutcome",
    "ContactPlan",
    "DesiredContact",
    "DestinationAdapter",
    "FieldRoute",
    "Guard",
    "HubSpotAdapter",
    "MailchimpAdapter",
    "Observation",
    "Plan",
    "Reconciliation",
    "RecordingSuppressions",
    "RunSummary",
    "SegmentRoute",
    "SuppressionSink",
    "SyncConfig",
    "SyncState",
    "SyncStateStore",
    "WorkItem",
    "WorkItemPointer",
    "WorkItemStore",
    "apply",
    "apply_all",
    "build_desired",
    "chunk_plan",
    "estimate_calls",
    "guard_from_views",
    "observe_hubspot",
    "observe_mailchimp",
    "plan",
    "plan_contact",
    "reconcile",
    "render_plan",
    "summarise",
    "to_jsonl",
]
