"""Routes of the web application (docs/ui.md). Mounted at the site root; the REST API,
DICOMweb, the viewer and the Django admin keep their own prefixes."""

from __future__ import annotations

from django.urls import path

from carina.ui.views import (
    account,
    audit,
    dashboard,
    hospitals,
    nodes,
    sending,
    status,
    study,
    upload,
    users,
    worklist,
)

app_name = "ui"

UID = "<str:uid>"

urlpatterns = [
    path("", worklist.worklist, name="worklist"),
    # A study, its series' tags, and what can be done with it.
    path(f"studies/{UID}/", study.study, name="study"),
    path(f"studies/{UID}/tags/", study.tags, name="tags"),
    path(f"studies/{UID}/history/", study.history, name="study-history"),
    path(f"studies/{UID}/delete/", study.delete, name="study-delete"),
    path(f"studies/{UID}/send/", study.send, name="study-send"),
    path("transfers/", sending.transfer_log, name="transfers"),
    path("upload/", upload.upload, name="upload"),
    path("upload/<uuid:upload_id>/", upload.upload_status, name="upload-status"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("audit/", audit.audit, name="audit"),
    path("audit/export.csv", audit.export, name="audit-export"),
    # Administration of the current hospital (system administrators: every hospital).
    path("manage/nodes/", nodes.node_list, name="nodes"),
    path("manage/nodes/add/", nodes.node_edit, name="node-add"),
    path("manage/nodes/<int:node_id>/", nodes.node_edit, name="node-edit"),
    path("manage/nodes/<int:node_id>/delete/", nodes.node_delete, name="node-delete"),
    path("manage/nodes/<int:node_id>/echo/", nodes.node_echo, name="node-echo"),
    path("manage/users/", users.user_list, name="users"),
    path("manage/users/add/", users.user_add, name="user-add"),
    path("manage/users/<int:user_id>/", users.user_edit, name="user-edit"),
    path("manage/users/<int:user_id>/remove/", users.user_remove, name="user-remove"),
    path("manage/policies/", hospitals.policies, name="policies"),
    path("manage/hospitals/", hospitals.hospital_list, name="hospitals"),
    path("manage/hospitals/add/", hospitals.hospital_add, name="hospital-add"),
    path("manage/hospitals/<slug:slug>/", hospitals.hospital_edit, name="hospital-edit"),
    path("manage/status/", status.status, name="status"),
    # The signed-in user's own account and the hospital switcher.
    path("account/", account.account, name="account"),
    path("account/password/", account.password, name="password"),
    path("account/authenticator/", account.authenticator, name="authenticator"),
    path("switch-hospital/", account.switch_hospital, name="switch-hospital"),
]
