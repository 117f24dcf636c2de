# queue/helper: the consumer (supervisor, slots, exec handler) and wake channel.
libfcgiq_a_SOURCES += queue/wake.h queue/helper.h
