from __future__ import annotations

from typing import Any

from django import forms

from apps.feedback.models import Feedback
from apps.judging.models import Judgement
from apps.review import selectors
from apps.review.models import BetterAnswer, JudgementToValidate, NegativeFeedback, SyntheticPair

SCORES = [(str(x / 2), f"{x / 2:g}") for x in range(11)]


class JudgementDecisionForm(forms.ModelForm):
    decision = forms.ChoiceField(
        choices=[("accept", "Accept the AI score"), ("override", "Override the score")],
        widget=forms.RadioSelect,
        initial="accept",
    )
    new_score = forms.TypedChoiceField(
        choices=[("", "-"), *SCORES],
        coerce=float,
        empty_value=None,
        required=False,
        label="Your score",
        help_text="When overriding: 0 to 5 in steps of 0.5.",
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    class Meta:
        model = JudgementToValidate
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # An overridden item opens on its override, so saving it again keeps the SME's
        # score instead of quietly turning it back into the AI's.
        judgement = self.instance
        if judgement.pk and judgement.review_state == Judgement.Review.OVERRIDDEN:
            self.initial.update(
                decision="override",
                new_score=str(float(judgement.validated_score)),
                reason=selectors.override_reason_last(judgement_id=judgement.pk),
            )

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what ModelForm.clean returns (typed there as optional)
        if data.get("decision") == "override":
            if data.get("new_score") is None:
                self.add_error("new_score", "Choose the score you give the answer.")
            if not (data.get("reason") or "").strip():
                self.add_error("reason", "Say why you override the AI score.")
        return data


class TriageForm(forms.ModelForm):
    decision = forms.ChoiceField(
        choices=[c for c in Feedback.Triage.choices if c[0] != Feedback.Triage.NEW],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    class Meta:
        model = NegativeFeedback
        fields: list[str] = []


class BetterAnswerForm(forms.ModelForm):
    decision = forms.ChoiceField(
        choices=[("accept", "Accept as a training reference"), ("reject", "Reject")],
        widget=forms.RadioSelect,
    )
    accepted_text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        required=False,
        help_text="Edit before accepting if needed. Empty: the text accepted so far if this "
        "answer is accepted, the user's text otherwise.",
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    class Meta:
        model = BetterAnswer
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # An accepted item opens on the text that was accepted (an SME's edit included).
        feedback = self.instance
        if feedback.pk and feedback.better_answer_state == Feedback.BetterAnswer.ACCEPTED:
            accepted = selectors.better_answer_accepted_text(feedback_id=feedback.pk)
            if accepted:
                self.initial["accepted_text"] = accepted


class SyntheticForm(forms.ModelForm):
    decision = forms.ChoiceField(
        choices=[("validate", "Validate"), ("reject", "Reject")], widget=forms.RadioSelect
    )
    corrected_question = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, help_text="Empty keeps it."
    )
    corrected_answer = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), required=False, help_text="Empty keeps it."
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    class Meta:
        model = SyntheticPair
        fields: list[str] = []
