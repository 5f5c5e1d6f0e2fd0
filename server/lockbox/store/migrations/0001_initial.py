from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from lockbox.domain.lifecycle import Status
from lockbox.domain.policy import Role
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Tenant',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=200)),
                ('lockbox_enabled', fields.BooleanField(default=True)),
                ('resource_roots', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('pending_request_ttl_seconds', fields.IntField(default=345600)),
                ('default_access_seconds', fields.IntField(default=28800)),
                ('max_access_seconds', fields.IntField(default=28800)),
                ('audit_seq', fields.BigIntField(default=0)),
                ('audit_head', fields.CharField(null=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'tenant', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AuditEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='audit_events', on_delete=OnDelete.RESTRICT)),
                ('seq', fields.BigIntField()),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('action', fields.CharField(max_length=100)),
                ('actor_id', fields.UUIDField(null=True)),
                ('request_id', fields.UUIDField(null=True)),
                ('detail', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('prev_hash', fields.CharField(null=True, max_length=64)),
                ('hash', fields.CharField(max_length=64)),
            ],
            options={'table': 'audit_event', 'app': 'models', 'unique_together': (('tenant', 'seq'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Principal',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=200)),
                ('email', fields.CharField(null=True, max_length=320)),
                ('role', fields.CharEnumField(description='TENANT_ADMIN: TENANT_ADMIN\nAPPROVER: APPROVER\nAUDITOR: AUDITOR\nENGINEER: ENGINEER\nSUPPORT_MANAGER: SUPPORT_MANAGER\nOPERATOR_ADMIN: OPERATOR_ADMIN', enum_type=Role, max_length=32)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', null=True, db_constraint=True, to_field='id', related_name='principals', on_delete=OnDelete.RESTRICT)),
                ('scopes', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('disabled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'principal', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ApiToken',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('principal', fields.ForeignKeyField('models.Principal', source_field='principal_id', db_constraint=True, to_field='id', related_name='tokens', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('label', fields.CharField(default='', max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'api_token', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An API token. Only the SHA-256 of the secret is kept.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SupportTicket',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='tickets', on_delete=OnDelete.RESTRICT)),
                ('title', fields.CharField(max_length=500)),
                ('is_open', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'support_ticket', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AccessRequest',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='requests', on_delete=OnDelete.RESTRICT)),
                ('ticket', fields.ForeignKeyField('models.SupportTicket', source_field='ticket_id', db_constraint=True, to_field='id', related_name='requests', on_delete=OnDelete.RESTRICT)),
                ('engineer', fields.ForeignKeyField('models.Principal', source_field='engineer_id', db_constraint=True, to_field='id', related_name='requests', on_delete=OnDelete.RESTRICT)),
                ('resources', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('justification', fields.TextField(unique=False)),
                ('duration_seconds', fields.IntField()),
                ('status', fields.CharEnumField(db_index=True, description='PENDING: PENDING\nAPPROVED: APPROVED\nDENIED: DENIED\nEXPIRED: EXPIRED\nREVOKED: REVOKED\nCOMPLETED: COMPLETED\nCANCELED: CANCELED', enum_type=Status, max_length=16)),
                ('created_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('decided_by', fields.ForeignKeyField('models.Principal', source_field='decided_by_id', null=True, db_constraint=True, to_field='id', related_name='decisions', on_delete=OnDelete.RESTRICT)),
                ('decision_reason', fields.TextField(null=True, unique=False)),
                ('access_starts_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('access_ends_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('activity_seq', fields.BigIntField(default=0)),
            ],
            options={'table': 'access_request', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ActivityEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('request', fields.ForeignKeyField('models.AccessRequest', source_field='request_id', db_constraint=True, to_field='id', related_name='activity', on_delete=OnDelete.RESTRICT)),
                ('seq', fields.BigIntField()),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('engineer', fields.ForeignKeyField('models.Principal', source_field='engineer_id', db_constraint=True, to_field='id', related_name='activity', on_delete=OnDelete.RESTRICT)),
                ('resource', fields.CharField(max_length=1024)),
                ('action', fields.CharField(max_length=200)),
                ('allowed', fields.BooleanField()),
                ('denial_reason', fields.TextField(null=True, unique=False)),
                ('detail', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'activity_event', 'app': 'models', 'unique_together': (('request', 'seq'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
