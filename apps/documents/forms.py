from __future__ import annotations

from typing import Any

from django import forms

from apps.documents.selectors import searchable_documents


class SearchForm(forms.Form):
    q = forms.CharField(label="Search", max_length=1000, required=False, strip=True)
    documents = forms.ModelMultipleChoiceField(
        queryset=searchable_documents(), required=False, label="Only in"
    )
    k = forms.IntegerField(min_value=1, max_value=50, required=False)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ".pdf,.md,.markdown,.txt"}))
        # Empty files still reach the service, which records why they were refused.
        kwargs.setdefault("allow_empty_file", True)
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class UploadForm(forms.Form):
    # A declared field, which the form's metaclass takes off the class into base_fields: no
    # clash at run time with BaseForm.files (the uploaded files), as the stubs think.
    files = MultipleFileField(label="PDF, Markdown or text files")  # type: ignore[assignment]
    title = forms.CharField(
        max_length=300, required=False, help_text="Optional; used when uploading a single file."
    )
