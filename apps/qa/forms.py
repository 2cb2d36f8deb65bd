from __future__ import annotations

from django import forms

from apps.feedback.models import Score


class QuestionForm(forms.Form):
    question = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Ask about the design criteria…"}),
        strip=True,
        required=False,  # the service says what is wrong with an empty or long question
    )
    conversation = forms.IntegerField(required=False, widget=forms.HiddenInput)
    client_token = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)


class FeedbackForm(forms.Form):
    score = forms.TypedChoiceField(
        choices=Score.choices,
        coerce=int,
        widget=forms.RadioSelect,
        label="This answer is correct and useful",
    )
    better_answer = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, label="A better answer (optional)"
    )
    note = forms.CharField(
        widget=forms.Textarea(
            attrs={
                "rows": 1,
                "placeholder": "e.g. This is specified on page 21 of section 01 13 10",
            }
        ),
        required=False,
        label="Note (optional)",
    )
