from django.db import models


class Note(models.Model):
    room = models.CharField(max_length=64)
    text = models.TextField()
