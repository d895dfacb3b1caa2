"""Web Push delivery: aes128gcm encryption, VAPID, a concurrent sender and a push-service simulator."""
