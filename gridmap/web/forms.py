"""The HTML forms of the web pages (Flask-WTF: every form carries the CSRF token).

Owns: field definitions and plain validation (lengths, numbers). The rules (who may do what, where
a case lands) stay in the services the views call. Messages come from ``gridmap.web.i18n``.
Templates render the fields themselves (labels are translated there); ``{{ form.csrf_token }}``
puts the token in.
"""
from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, HiddenField, IntegerField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from gridmap.incidents.intake import MAX_DESCRIPTION


class LoginForm(FlaskForm):
    username = StringField(validators=[DataRequired(), Length(max=80)])
    password = PasswordField(validators=[DataRequired(), Length(max=200)])
    next = HiddenField(validators=[Optional(), Length(max=500)])


class LogoutForm(FlaskForm):
    """Only the CSRF token: logging out is a POST."""


class ReportForm(FlaskForm):
    category = SelectField(choices=[], validate_choice=False, validators=[DataRequired(), Length(max=60)])
    description = TextAreaField(validators=[DataRequired(), Length(max=MAX_DESCRIPTION)])
    lon = StringField(validators=[DataRequired(), Length(max=40)])
    lat = StringField(validators=[DataRequired(), Length(max=40)])
    address = StringField(validators=[Optional(), Length(max=300)])
    urgent = BooleanField()
    photo = FileField()


class ActionForm(FlaskForm):
    """One life-cycle action on a case; which extra fields count depends on the action."""

    action = HiddenField(validators=[DataRequired(), Length(max=40)])
    version = IntegerField(validators=[Optional(), NumberRange(min=1)])
    comment = TextAreaField(validators=[Optional(), Length(max=5000)])
    satisfaction = IntegerField(validators=[Optional(), NumberRange(min=1, max=5)])
    duplicate_of_id = IntegerField(validators=[Optional(), NumberRange(min=1)])
    worker_id = IntegerField(validators=[Optional(), NumberRange(min=1)])
    deadline = StringField(validators=[Optional(), Length(max=40)])  # 督办: an optional new deadline
    photo = FileField()


#: actions whose form offers a photo upload (the photo is stored with the action, in one transaction)
PHOTO_ACTIONS = ("feedback", "self_handle", "request_extension", "confirm")
#: actions that take a worker (new assignee)
WORKER_ACTIONS = ("dispatch", "reassign", "escalate")
