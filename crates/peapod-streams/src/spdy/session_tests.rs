//! Sessions end to end: a client and a server session over an in-memory connection, and a raw
//! peer for what a well-behaved session never sends.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::frame::{Frame, GoAwayStatus, RstStatus, MAX_CONTROL_FRAME_LENGTH};
use super::stream::{RECEIVE_BUFFER, WINDOW_UPDATE_THRESHOLD};
use super::testing::{connection, headers, read_all, RawPeer, PROMPTLY};
use super::{Incoming, Session, SpdyError, Stream};

fn sessions() -> ((Session, Incoming), (Session, Incoming)) {
    let (client_io, server_io) = connection();
    (Session::client(client_io), Session::server(server_io))
}

/// Opens a stream from `client` and accepts it on `incoming`.
async fn open_pair(client: &Session, incoming: &mut Incoming, kind: &str) -> (Stream, Stream) {
    let opening = client.open(headers(&[("streamType", kind)]));
    let accepting = async { incoming.next().await.expect("a stream").accept() };
    let (opened, accepted) = tokio::join!(opening, accepting);
    (opened.expect("opened"), accepted)
}

#[tokio::test]
async fn streams_carry_headers_and_data_with_independent_half_close() {
    let ((client, _client_incoming), (_server, mut incoming)) = sessions();
    let opening = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .open(headers(&[("streamType", "data"), ("port", "80")]))
                .await
        }
    });
    let pending = incoming.next().await.unwrap();
    assert_eq!(pending.headers().get("streamtype"), Some("data"));
    assert_eq!(pending.headers().get("Port"), Some("80"));
    assert_eq!(pending.id(), 1);
    let mut accepted = pending.accept();
    let mut opened = opening.await.unwrap().unwrap();
    assert_eq!(opened.id(), 1);

    opened.write_all(b"hello").await.unwrap();
    opened.shutdown().await.unwrap();
    assert_eq!(read_all(&mut accepted).await, b"hello");
    accepted
        .write_all(b"still writing after the peer's FIN")
        .await
        .unwrap();
    accepted.shutdown().await.unwrap();
    assert_eq!(
        read_all(&mut opened).await,
        b"still writing after the peer's FIN"
    );
}

#[tokio::test]
async fn the_server_opens_even_streams() {
    let ((_client, mut client_incoming), (server, _incoming)) = sessions();
    let opening = server.open(headers(&[("x", "y")]));
    let accepting = async { client_incoming.next().await.unwrap().accept() };
    let (opened, accepted) = tokio::join!(opening, accepting);
    assert_eq!(opened.unwrap().id(), 2);
    assert_eq!(accepted.id(), 2);
}

#[tokio::test]
async fn many_concurrent_streams_echo() {
    let ((client, _client_incoming), (_server, mut incoming)) = sessions();
    tokio::spawn(async move {
        while let Some(pending) = incoming.next().await {
            let mut stream = pending.accept();
            tokio::spawn(async move {
                let data = read_all(&mut stream).await;
                stream.write_all(&data).await.unwrap();
                stream.shutdown().await.unwrap();
            });
        }
    });
    let mut tasks = Vec::new();
    for index in 0..200u32 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = client
                .open(headers(&[("n", &index.to_string())]))
                .await
                .unwrap();
            let payload: Vec<u8> = (0..64 << 10).map(|i: u32| (i * 7 + index) as u8).collect();
            let (mut read_half, mut write_half) = tokio::io::split(&mut stream);
            let writing = async {
                write_half.write_all(&payload).await.unwrap();
                write_half.shutdown().await.unwrap();
            };
            let (echo, ()) = tokio::join!(read_all(&mut read_half), writing);
            assert_eq!(echo, payload, "stream {index}");
        }));
    }
    for task in tasks {
        tokio::time::timeout(PROMPTLY, task).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_large_transfer_arrives_byte_exact() {
    const SIZE: usize = 64 << 20;
    let ((client, _client_incoming), (_server, mut incoming)) = sessions();
    let (mut opened, mut accepted) = open_pair(&client, &mut incoming, "data").await;
    let started = Instant::now();
    let sending = tokio::spawn(async move {
        let block: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        for _ in 0..SIZE / block.len() {
            opened.write_all(&block).await.unwrap();
        }
        opened.shutdown().await.unwrap();
        opened
    });
    let mut received = 0usize;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = accepted.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        for (offset, byte) in buf[..n].iter().enumerate() {
            assert_eq!(*byte, (((received + offset) % (1 << 20)) % 251) as u8);
        }
        received += n;
    }
    sending.await.unwrap();
    assert_eq!(received, SIZE);
    let seconds = started.elapsed().as_secs_f64();
    println!("64 MiB in {seconds:.3} s: {:.0} MiB/s", 64.0 / seconds);
}

#[tokio::test]
async fn an_unread_stream_holds_back_the_connection_not_memory() {
    let ((client, _client_incoming), (_server, mut incoming)) = sessions();
    let (mut slow_writer, mut slow_reader) = open_pair(&client, &mut incoming, "slow").await;
    let (mut other_writer, mut other_reader) = open_pair(&client, &mut incoming, "other").await;
    const SIZE: usize = 8 << 20;
    let flooding = tokio::spawn(async move {
        slow_writer.write_all(&vec![7u8; SIZE]).await.unwrap();
        slow_writer.shutdown().await.unwrap();
        slow_writer
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!flooding.is_finished(), "8 MiB cannot all be in flight");
    let held = slow_reader.buffered();
    assert!(
        held >= RECEIVE_BUFFER / 2,
        "the stream buffered only {held}"
    );
    assert!(
        held <= RECEIVE_BUFFER + (64 << 10),
        "the stream buffered {held}"
    );

    let queued_behind = tokio::spawn(async move {
        other_writer.write_all(b"behind the flood").await.unwrap();
        other_writer.shutdown().await.unwrap();
        other_writer
    });
    let mut early = [0u8; 16];
    let blocked =
        tokio::time::timeout(Duration::from_millis(200), other_reader.read(&mut early)).await;
    assert!(
        blocked.is_err(),
        "the connection was read past a full stream"
    );

    assert_eq!(read_all(&mut slow_reader).await.len(), SIZE);
    assert_eq!(read_all(&mut other_reader).await, b"behind the flood");
    flooding.await.unwrap();
    queued_behind.await.unwrap();
}

#[tokio::test]
async fn pings_are_answered_both_ways() {
    let ((client, _client_incoming), (server, _incoming)) = sessions();
    client.ping().await.unwrap();
    server.ping().await.unwrap();
    client.ping().await.unwrap();
}

#[tokio::test]
async fn a_reset_stream_fails_both_ways() {
    let ((client, _client_incoming), (_server, mut incoming)) = sessions();
    let (mut opened, mut accepted) = open_pair(&client, &mut incoming, "data").await;
    accepted.reset();
    let error = opened.read(&mut [0u8; 8]).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(opened.write_all(b"x").await.is_err());
    assert!(accepted.read(&mut [0u8; 8]).await.is_err());
}

#[tokio::test]
async fn a_rejected_stream_fails_to_open() {
    let ((client, _client_incoming), (_server, mut incoming)) = sessions();
    let opening = client.open(headers(&[("port", "0")]));
    let rejecting = async { incoming.next().await.unwrap().reject() };
    let (opened, ()) = tokio::join!(opening, rejecting);
    assert!(matches!(
        opened,
        Err(SpdyError::StreamReset(RstStatus::CANCEL))
    ));
}

#[tokio::test]
async fn frames_for_unknown_streams_are_reset_and_the_session_lives_on() {
    let (raw_io, server_io) = connection();
    let (_server, _incoming) = Session::server(server_io);
    let mut raw = RawPeer::new(raw_io);
    raw.send(Frame::Data {
        stream_id: 99,
        fin: false,
        data: Bytes::from_static(b"lost"),
    })
    .await;
    assert_eq!(
        raw.next().await,
        Some(Frame::RstStream {
            stream_id: 99,
            status: RstStatus::INVALID_STREAM
        })
    );
    raw.send(Frame::SynReply {
        stream_id: 5,
        fin: false,
        headers: headers(&[]),
    })
    .await;
    assert_eq!(
        raw.next().await,
        Some(Frame::RstStream {
            stream_id: 5,
            status: RstStatus::INVALID_STREAM
        })
    );
    raw.send(Frame::Ping { id: 7 }).await;
    assert_eq!(raw.next().await, Some(Frame::Ping { id: 7 }));
}

#[tokio::test]
async fn streams_with_the_wrong_parity_or_order_are_protocol_errors() {
    let (raw_io, server_io) = connection();
    let (_server, mut incoming) = Session::server(server_io);
    let mut raw = RawPeer::new(raw_io);
    for stream_id in [2, 5, 3] {
        raw.send(Frame::SynStream {
            stream_id,
            associated_to: 0,
            priority: 0,
            fin: false,
            unidirectional: false,
            headers: headers(&[("n", &stream_id.to_string())]),
        })
        .await;
    }
    assert_eq!(incoming.next().await.unwrap().headers().get("n"), Some("5"));
    for stream_id in [2, 3] {
        let frame = raw
            .next_matching(|frame| matches!(frame, Frame::RstStream { .. }))
            .await;
        assert_eq!(
            frame,
            Frame::RstStream {
                stream_id,
                status: RstStatus::PROTOCOL_ERROR
            }
        );
    }
}

#[tokio::test]
async fn consumed_data_is_acknowledged_with_window_updates() {
    let (raw_io, server_io) = connection();
    let (_server, mut incoming) = Session::server(server_io);
    let mut raw = RawPeer::new(raw_io);
    raw.send(Frame::SynStream {
        stream_id: 1,
        associated_to: 0,
        priority: 0,
        fin: false,
        unidirectional: false,
        headers: headers(&[]),
    })
    .await;
    let mut stream = incoming.next().await.unwrap().accept();
    assert!(matches!(
        raw.next().await,
        Some(Frame::SynReply { stream_id: 1, .. })
    ));
    raw.send(Frame::Data {
        stream_id: 1,
        fin: false,
        data: Bytes::from(vec![1u8; WINDOW_UPDATE_THRESHOLD]),
    })
    .await;
    let mut buf = vec![0u8; WINDOW_UPDATE_THRESHOLD];
    stream.read_exact(&mut buf).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        if let Frame::WindowUpdate { stream_id, delta } = raw
            .next_matching(|frame| matches!(frame, Frame::WindowUpdate { .. }))
            .await
        {
            assert_eq!(delta as usize, WINDOW_UPDATE_THRESHOLD);
            seen.push(stream_id);
        }
    }
    seen.sort();
    assert_eq!(seen, [0, 1]);
}

#[tokio::test]
async fn an_oversized_frame_ends_the_session_with_goaway() {
    let (raw_io, server_io) = connection();
    let (server, mut incoming) = Session::server(server_io);
    let mut raw = RawPeer::new(raw_io);
    let mut header = vec![0x80, 0x03, 0x00, 0x01];
    header.extend_from_slice(&((MAX_CONTROL_FRAME_LENGTH + 1) as u32).to_be_bytes());
    raw.send_bytes(&header).await;
    assert_eq!(
        raw.next().await,
        Some(Frame::GoAway {
            last_good_stream_id: 0,
            status: GoAwayStatus::PROTOCOL_ERROR
        })
    );
    assert!(incoming.next().await.is_none());
    tokio::time::timeout(PROMPTLY, server.closed())
        .await
        .unwrap();
    assert!(matches!(
        server.open(headers(&[])).await,
        Err(SpdyError::SessionClosed)
    ));
}

#[tokio::test]
async fn goaway_from_the_peer_stops_new_streams_only() {
    let (raw_io, server_io) = connection();
    let (server, mut incoming) = Session::server(server_io);
    let mut raw = RawPeer::new(raw_io);
    raw.send(Frame::SynStream {
        stream_id: 1,
        associated_to: 0,
        priority: 0,
        fin: false,
        unidirectional: false,
        headers: headers(&[]),
    })
    .await;
    let mut stream = incoming.next().await.unwrap().accept();
    raw.send(Frame::GoAway {
        last_good_stream_id: 0,
        status: GoAwayStatus::OK,
    })
    .await;
    raw.send(Frame::Data {
        stream_id: 1,
        fin: true,
        data: Bytes::from_static(b"after goaway"),
    })
    .await;
    assert_eq!(read_all(&mut stream).await, b"after goaway");
    assert!(matches!(
        server.open(headers(&[])).await,
        Err(SpdyError::GoneAway)
    ));
    stream.write_all(b"reply").await.unwrap();
    let frame = raw
        .next_matching(|frame| matches!(frame, Frame::Data { .. }))
        .await;
    assert_eq!(
        frame,
        Frame::Data {
            stream_id: 1,
            fin: false,
            data: Bytes::from_static(b"reply")
        }
    );
}

#[tokio::test]
async fn a_dropped_connection_ends_every_stream() {
    let (raw_io, server_io) = connection();
    let (server, mut incoming) = Session::server(server_io);
    let mut raw = RawPeer::new(raw_io);
    for stream_id in [1, 3] {
        raw.send(Frame::SynStream {
            stream_id,
            associated_to: 0,
            priority: 0,
            fin: false,
            unidirectional: false,
            headers: headers(&[]),
        })
        .await;
    }
    raw.send(Frame::Data {
        stream_id: 3,
        fin: true,
        data: Bytes::from_static(b"done"),
    })
    .await;
    let mut unfinished = incoming.next().await.unwrap().accept();
    let mut finished = incoming.next().await.unwrap().accept();
    drop(raw);
    let error = unfinished.read(&mut [0u8; 8]).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionAborted);
    assert_eq!(read_all(&mut finished).await, b"done");
    assert!(incoming.next().await.is_none());
    tokio::time::timeout(PROMPTLY, server.closed())
        .await
        .unwrap();
    assert!(unfinished.write_all(b"x").await.is_err());
}

#[tokio::test]
async fn dropping_every_handle_closes_the_session() {
    let ((client, client_incoming), (_server, mut incoming)) = sessions();
    let (opened, _accepted) = open_pair(&client, &mut incoming, "data").await;
    drop((client, client_incoming, opened));
    let closed = tokio::time::timeout(PROMPTLY, incoming.next())
        .await
        .unwrap();
    assert!(closed.is_none());
}

#[tokio::test]
async fn close_flushes_what_was_written_then_sends_goaway() {
    let (raw_io, client_io) = connection();
    let (client, _incoming) = Session::client(client_io);
    let mut raw = RawPeer::new(raw_io);
    let opening = client.open(headers(&[]));
    let replying = async {
        let frame = raw.next().await.unwrap();
        assert!(matches!(frame, Frame::SynStream { stream_id: 1, .. }));
        raw.send(Frame::SynReply {
            stream_id: 1,
            fin: false,
            headers: headers(&[]),
        })
        .await;
    };
    let (opened, ()) = tokio::join!(opening, replying);
    let mut stream = opened.unwrap();
    stream.write_all(b"last words").await.unwrap();
    stream.shutdown().await.unwrap();
    tokio::time::timeout(PROMPTLY, client.close())
        .await
        .unwrap();
    let mut frames = Vec::new();
    while let Some(frame) = raw.next().await {
        frames.push(frame);
    }
    assert_eq!(
        frames,
        [
            Frame::Data {
                stream_id: 1,
                fin: false,
                data: Bytes::from_static(b"last words")
            },
            Frame::Data {
                stream_id: 1,
                fin: true,
                data: Bytes::new()
            },
            Frame::GoAway {
                last_good_stream_id: 0,
                status: GoAwayStatus::OK
            },
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "throughput measurement; run with --release --ignored --nocapture"]
async fn throughput() {
    const SIZE: usize = 1 << 30;
    let ((client, _client_incoming), (_server, mut incoming)) = sessions();
    let (mut opened, mut accepted) = open_pair(&client, &mut incoming, "data").await;
    let started = Instant::now();
    let sending = tokio::spawn(async move {
        let block = vec![5u8; 1 << 20];
        for _ in 0..SIZE / block.len() {
            opened.write_all(&block).await.unwrap();
        }
        opened.shutdown().await.unwrap();
        opened
    });
    let mut received = 0usize;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = accepted.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        received += n;
    }
    sending.await.unwrap();
    assert_eq!(received, SIZE);
    let seconds = started.elapsed().as_secs_f64();
    println!("1 GiB in {seconds:.3} s: {:.0} MiB/s", 1024.0 / seconds);
}
