"""The step-label family (prm, orm, orm_scalar): chats (step chats, "+"/"-" labels, label-only loss, packing) and
model (training and the one-pass step scorer)."""
