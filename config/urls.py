from __future__ import annotations

from django.urls import path

from accounts import views as accounts
from devices import views as devices
from messaging import views as messaging

urlpatterns = [
    path("", accounts.home_page, name="home"),
    # pages
    path("signup", accounts.signup_page, name="signup"),
    path("signin", accounts.signin_page, name="signin"),
    path("devices", devices.devices_page, name="devices"),
    path("link", devices.link_page, name="link"),
    path("link/approve", devices.approve_page, name="link-approve"),
    path("chats", messaging.chats_page, name="chats"),
    path("chats/<str:username>", messaging.chats_page, name="conversation"),
    path("chats/<str:username>/contact", messaging.chats_page, name="contact"),
    path("groups", messaging.groups_page, name="groups"),
    path("groups/<str:group_id>", messaging.groups_page, name="group"),
    # accounts API
    path("api/accounts/register/options", accounts.register_options),
    path("api/accounts/register", accounts.register),
    path("api/accounts/signin/options", accounts.signin_options),
    path("api/accounts/signin", accounts.signin),
    path("api/accounts/reregister/options", accounts.reregister_options),
    path("api/accounts/reregister/verify", accounts.reregister_verify),
    path("api/accounts/reregister", accounts.reregister),
    path("api/accounts/signout", accounts.signout),
    path("api/devices/signin/options", accounts.device_signin_options),
    path("api/devices/signin", accounts.device_signin),
    path("api/me", accounts.me),
    path("api/me/display-name", accounts.me_display_name),
    # devices and key directory
    path("api/devices", devices.device_index),
    path("api/devices/list", devices.device_list_publish),
    path("api/devices/<str:device_id>/revoke", devices.device_revoke),
    path("api/devices/<str:device_id>/rename", devices.device_rename),
    path("api/prekeys", devices.own_prekeys),
    path("api/accounts/<str:username>/profile", accounts.account_profile),
    path("api/accounts/<str:username>/device-list", devices.account_device_list),
    path("api/accounts/<str:username>/bundles", devices.account_prekey_bundles),
    # linking
    path("api/link", devices.link_open),
    path("api/link/<str:link_id>", devices.link_status),
    path("api/link/<str:link_id>/device-signature", devices.link_device_signature),
    path("api/link/<str:link_id>/redeem", devices.link_redeem),
    path("api/link/<str:link_id>/cancel", devices.link_cancel),
    path("api/link/<str:link_id>/detail", devices.link_detail),
    path("api/link/<str:link_id>/approve/options", devices.link_approve_options),
    path("api/link/<str:link_id>/approve", devices.link_approve),
    path("api/link/<str:link_id>/complete", devices.link_complete),
    path("api/link/<str:link_id>/decline", devices.link_decline),
    # history bundles for new devices
    path("api/history", messaging.history_upload),
    path("api/history/<str:blob_id>", messaging.history_download),
    # attachments: encrypted blobs uploaded in pieces, fetched by the devices a send names
    path("api/attachments", messaging.attachment_open),
    path("api/attachments/grants", messaging.attachment_grants),
    path("api/attachments/<str:blob_id>", messaging.attachment_download),
    path("api/attachments/<str:blob_id>/upload", messaging.attachment_upload),
    path("api/attachments/<str:blob_id>/fetched", messaging.attachment_fetched),
    path("api/attachments/<str:blob_id>/pieces/<int:index>", messaging.attachment_piece),
    # the account's state log (synced contacts, read state, settings, names)
    path("api/state", messaging.state_log),
    # group membership logs (signed entries the server checks, stores and relays)
    path("api/groups", messaging.groups),
    path("api/groups/<str:group_id>/entries", messaging.group_entries),
]
