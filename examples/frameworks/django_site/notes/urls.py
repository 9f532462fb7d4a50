from django.urls import path

from notes import views

urlpatterns = [
    path("rooms/<str:room>/notes", views.create_note),
    path("rooms/<str:room>/announce", views.announce),
]
